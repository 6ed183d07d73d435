//! `wactl deploy` and friends against the real control plane of `cargo xtask infra up`
//! (kube-apiserver, controllers, kwok nodes). Each test deploys to its own namespace.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use wactl::cluster::{self, LockOptions, RevisionStatus, revision};
use wactl::config::Environment;
use wactl::deploy::{self, DeployError, DeployOptions, Outcome};
use wactl::ui::deploy::DeployUi;

mod support;

use support::{IMAGE_V1, IMAGE_V2, TestEnv, client, kubeconfig, live_image, options, pinned, root};

async fn deploy(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
) -> Result<deploy::DeployReport, DeployError> {
    deploy::deploy(client, env, options, &DeployUi::silent(true)).await
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn lifecycle_first_deploy_noop_image_change_prune_history_rollback_destroy() {
    let t = TestEnv::new(
        "t-life",
        "autoscaling:\n  enabled: true\n  min: 2\n  max: 3\n  cpu: 80\n",
    );
    let env = t.load();
    let client = client(&env).await;

    let first = deploy(&client, &env, &options(IMAGE_V1))
        .await
        .expect("first deploy");
    assert_eq!(first.outcome, Outcome::Succeeded);
    assert_eq!(first.revision, Some(1));
    assert!(
        first
            .stages
            .iter()
            .any(|s| s.name == deploy::Stage::Track && s.status == deploy::StageStatus::Ok),
        "{first:#?}"
    );
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V1));

    let again = deploy(&client, &env, &options(IMAGE_V1))
        .await
        .expect("no-op deploy");
    assert_eq!(again.outcome, Outcome::Unchanged, "{again:#?}");
    assert_eq!(again.revision, Some(1));
    assert_eq!(
        revision::list(&client, &t.namespace, "t")
            .await
            .expect("revisions")
            .len(),
        1,
        "a no-op writes nothing"
    );

    // diff shows the image change and nothing else.
    let out = t.wactl(&["diff", "t", "--image", IMAGE_V2]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("update Deployment"), "{stdout}");
    assert!(
        // Long values are folded (`image: >-`, the value on the next line).
        stdout
            .lines()
            .any(|l| l.starts_with('+') && l.trim_start_matches('+').trim() == pinned(IMAGE_V2)),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 to create, 1 to update, 0 to delete"),
        "{stdout}"
    );

    let second = deploy(&client, &env, &options(IMAGE_V2))
        .await
        .expect("image change");
    assert_eq!(second.outcome, Outcome::Succeeded);
    assert_eq!(second.revision, Some(2));
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V2));

    // Autoscaling off: the HPA is no longer rendered and gets pruned.
    t.write("");
    let env = t.load();
    let diff = deploy::plan(
        &client,
        &env,
        &wactl::render::RenderOptions {
            image: Some(IMAGE_V2.into()),
            templates: None,
        },
        Default::default(),
    )
    .await
    .expect("plan");
    assert_eq!(diff.count(cluster::Change::Delete), 1, "{}", diff.summary());
    let third = deploy(&client, &env, &options(IMAGE_V2))
        .await
        .expect("prune");
    assert_eq!(third.outcome, Outcome::Succeeded);
    let prune = third
        .stages
        .iter()
        .find(|s| s.name == deploy::Stage::Prune)
        .expect("prune stage");
    assert!(
        prune.detail.contains("HorizontalPodAutoscaler"),
        "{prune:?}"
    );
    let hpa: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), &t.namespace);
    assert!(hpa.get_opt("address-service").await.expect("get").is_none());

    let out = t.wactl(&["history", "t"]);
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(history.matches("succeeded").count(), 3, "{history}");

    let out = t.wactl(&["rollback", "t", "--to", "1", "--timeout", "60s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V1));
    let revisions = revision::list(&client, &t.namespace, "t")
        .await
        .expect("revisions");
    let last = revisions.last().expect("a revision");
    assert_eq!(
        (last.number, last.rollback_of, last.status),
        (4, Some(1), RevisionStatus::Succeeded)
    );
    assert!(
        hpa.get_opt("address-service").await.expect("get").is_some(),
        "revision 1 had the HPA"
    );

    let out = t.wactl(&["status", "t"]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("revision 4 live"), "{status}");
    assert!(status.contains(IMAGE_V1), "{status}");

    let out = t.wactl(&["destroy", "t"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "destroy without a terminal or --yes is refused"
    );
    let out = t.wactl(&["destroy", "t", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &t.namespace);
    assert!(
        deployments
            .get_opt("address-service")
            .await
            .expect("get")
            .is_none_or(|d| d.metadata.deletion_timestamp.is_some())
    );
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_field_owned_by_another_manager_is_a_conflict() {
    let t = TestEnv::new("t-conflict", "");
    let env = t.load();
    let client = client(&env).await;
    deploy(&client, &env, &options(IMAGE_V1))
        .await
        .expect("first deploy");
    let api: Api<Deployment> = Api::namespaced(client.clone(), &t.namespace);
    let patch = serde_json::json!({ "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "address-service" }, "spec": { "revisionHistoryLimit": 9 } });
    api.patch(
        "address-service",
        &PatchParams::apply("ops-hotfix").force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("other manager");
    let error = deploy(&client, &env, &options(IMAGE_V2))
        .await
        .expect_err("conflict");
    let text = error.to_string();
    assert!(
        text.contains(&format!("Deployment {}/address-service", t.namespace)),
        "{text}"
    );
    assert!(text.contains(".spec.revisionHistoryLimit"), "{text}");
    assert!(text.contains("\"ops-hotfix\""), "{text}");
    assert!(text.contains("--force-conflicts"), "{text}");
    let mut forced = options(IMAGE_V2);
    forced.apply.force_conflicts = true;
    assert_eq!(
        deploy(&client, &env, &forced)
            .await
            .expect("forced")
            .outcome,
        Outcome::Succeeded
    );
}

/// The lease a killed deploy leaves behind: taken as `ana@ci (pid 4242)` for `duration`
/// and never renewed nor released.
async fn killed_deploys_lease(client: &Client, t: &TestEnv, duration: Duration, force: bool) {
    let held = cluster::acquire_lock(
        client,
        &t.namespace,
        "t",
        &LockOptions {
            holder: "ana@ci (pid 4242)".into(),
            duration,
            force_unlock: force,
            renew_every: None,
        },
    )
    .await
    .expect("lock");
    drop(held);
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_second_deploy_is_refused_until_the_lease_expires() {
    let t = TestEnv::new("t-lock", "");
    let env = t.load();
    let client = client(&env).await;
    deploy(&client, &env, &options(IMAGE_V1))
        .await
        .expect("first deploy");
    // A deploy that is killed: it holds the lease and never releases it. Long enough to
    // outlast both refused deploys on a busy machine.
    killed_deploys_lease(&client, &t, Duration::from_secs(120), false).await;
    let error = deploy(&client, &env, &options(IMAGE_V2))
        .await
        .expect_err("locked");
    let text = error.to_string();
    assert!(
        text.contains("being deployed by ana@ci (pid 4242) since"),
        "{text}"
    );
    assert!(text.contains("--force-unlock"), "{text}");
    // The CLI says the same, with exit 1.
    let out = t.wactl(&["deploy", "t", "--skip-build", "--image", IMAGE_V2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ana@ci (pid 4242)"));
    // It expires by itself: the same holder's lease again, now 5 s long.
    killed_deploys_lease(&client, &t, Duration::from_secs(5), true).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        deploy(&client, &env, &options(IMAGE_V2))
            .await
            .expect("after expiry")
            .outcome,
        Outcome::Succeeded
    );
    // --force-unlock takes a live lease over.
    let _held = cluster::acquire_lock(
        &client,
        &t.namespace,
        "t",
        &LockOptions {
            holder: "bo".into(),
            duration: Duration::from_secs(600),
            force_unlock: false,
            renew_every: None,
        },
    )
    .await
    .expect("lock");
    let mut forced = options(IMAGE_V1);
    forced.force_unlock = true;
    assert_eq!(
        deploy(&client, &env, &forced)
            .await
            .expect("forced")
            .outcome,
        Outcome::Succeeded
    );
}

/// `KUBECONFIG` naming several files merges them as kubectl does: `other.yaml` (an unrelated
/// cluster, whose context is the current one) comes first, a missing file is skipped, and
/// `dev`'s context `wactl-dev` is found in the infra kubeconfig that comes last.
#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn status_reads_every_file_of_a_kubeconfig_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let other = dir.path().join("other.yaml");
    std::fs::write(
        &other,
        "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: other\n  cluster:\n    server: https://127.0.0.1:1\nusers:\n- name: other\n  user:\n    token: not-a-token\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\n",
    )
    .expect("write other.yaml");
    let status = |kubeconfig: &std::ffi::OsStr| {
        Command::new(env!("CARGO_BIN_EXE_wactl"))
            .args([
                "--env-dir",
                root().join("environments").to_str().expect("utf-8"),
            ])
            .args(["--no-color", "status", "dev"])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("run wactl")
    };
    let list = std::env::join_paths([
        other.clone(),
        dir.path().join("missing.yaml"),
        PathBuf::from(kubeconfig()),
    ])
    .expect("a KUBECONFIG list");
    let out = status(&list);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with("environment dev (namespace world-address-dev)\n"),
        "{stdout}"
    );
    // Without the infra kubeconfig in the list, dev's context is nowhere: exit 2, and the
    // error names the files and the contexts there are.
    let out = status(other.as_os_str());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("context \"wactl-dev\" does not exist (contexts: other)"),
        "{stderr}"
    );
}

/// A deploy whose lease lapses (its renewals paused past expiry, as in a long API outage)
/// while it waits on a rollout: a second deploy takes the lock, and the first stops at its
/// next write (here the rollback) instead of applying, leaving the second one's lease alone.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_deploy_that_lost_its_lock_stops_before_applying_again() {
    let t = TestEnv::new("lost", "rollout:\n  progressDeadlineSeconds: 10\n");
    let env = t.load();
    let client = client(&env).await;
    deploy(&client, &env, &options(IMAGE_V1))
        .await
        .expect("first deploy");
    // v2 never gets ready, so the deploy waits on its rollout and would then roll back.
    let mut first = options(IMAGE_V2);
    first.templates = Some(t.fault_templates("never-ready"));
    first.lock_duration = Duration::from_secs(5);
    first.lock_renew_every = Some(Duration::from_secs(3600));
    // The second deploy takes the lock as soon as the first one's lease has lapsed, while
    // the first one still waits on its rollout; both run here, side by side.
    let second_holder = "bo@ci (pid 4243)";
    let first_done = std::sync::atomic::AtomicBool::new(false);
    let first_deploy = async {
        let result = deploy(&client, &env, &first).await;
        first_done.store(true, std::sync::atomic::Ordering::SeqCst);
        result
    };
    let take_over = async {
        // Only once the first deploy holds the lock: before that (render, plan and the
        // namespace on a busy machine) the lock is free and taking it would refuse the first.
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(client.clone(), &t.namespace);
        let waited = std::time::Instant::now();
        loop {
            let lease = leases
                .get_opt(&cluster::lease_name("t"))
                .await
                .expect("reading the lease");
            let holder = lease.and_then(|l| l.spec).and_then(|s| s.holder_identity);
            if holder.is_some_and(|h| !h.is_empty() && h != second_holder) {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(60)
                    && !first_done.load(std::sync::atomic::Ordering::SeqCst),
                "the first deploy never took the lock"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts <= 60, "the first deploy's lease never lapsed");
            tokio::time::sleep(Duration::from_millis(500)).await;
            let taken = cluster::acquire_lock(
                &client,
                &t.namespace,
                "t",
                &LockOptions {
                    holder: second_holder.into(),
                    duration: Duration::from_secs(600),
                    force_unlock: false,
                    renew_every: None,
                },
            )
            .await;
            match taken {
                Ok(held) => {
                    let first_was_running = !first_done.load(std::sync::atomic::Ordering::SeqCst);
                    return (held, attempts, first_was_running);
                }
                Err(e) => assert!(e.to_string().contains("is being deployed by"), "{e}"),
            }
        }
    };
    let (result, (second, attempts, first_was_running)) = tokio::join!(first_deploy, take_over);
    assert!(
        first_was_running,
        "the lock was taken while the first deploy still ran"
    );
    let error = result.expect_err("the first deploy stops");
    let report = error.report().expect("a report");
    assert_eq!(wactl::cli::code_of(&error), 1, "{error}");
    assert_eq!(report.outcome, Outcome::Failed, "{error}");
    assert_eq!(
        report.error.as_ref().map(|e| e.code.as_str()),
        Some("lock_lost"),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("expired: not renewed within its 5 s"),
        "{text}"
    );
    assert!(text.contains("revision 2 is marked interrupted"), "{text}");
    assert_eq!(report.rolled_back_to, None, "{error}");
    assert!(
        !report
            .stages
            .iter()
            .any(|s| s.name.as_str().starts_with("rollback")),
        "no rollback stage ran: {:?}",
        report.stages
    );
    // Nothing was applied after the lease was lost: v2 is still live, not rolled back.
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V2));
    let revisions = revision::list(&client, &t.namespace, "t")
        .await
        .expect("revisions");
    assert_eq!(
        revisions.iter().map(|r| r.status).collect::<Vec<_>>(),
        [RevisionStatus::Succeeded, RevisionStatus::Interrupted]
    );
    // The second deploy's lease is untouched: still its holder, not released by the first.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &t.namespace);
    let lease = leases
        .get(&cluster::lease_name("t"))
        .await
        .expect("the lease is still there");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(second_holder)
    );
    eprintln!("lost lock after {attempts} attempts to take it:\n{error}");
    second
        .ensure_held()
        .expect("the second deploy still holds it");
    second.release().await;
}

/// Deploys v1, then v2 with `fault`; expects the failure `code`, a rollback to v1, and
/// the failed revision recorded as rolled back.
async fn fails_and_rolls_back(
    test: &str,
    fault: &str,
    code: &str,
    extra_yaml: &str,
) -> deploy::DeployReport {
    let t = TestEnv::new(&format!("t-{test}"), extra_yaml);
    let env = t.load();
    let client = client(&env).await;
    deploy(&client, &env, &options(IMAGE_V1))
        .await
        .expect("first deploy");
    let mut faulty = options(IMAGE_V2);
    faulty.templates = Some(t.fault_templates(fault));
    let started = std::time::Instant::now();
    let error = deploy(&client, &env, &faulty)
        .await
        .expect_err("the faulty deploy fails");
    let elapsed = started.elapsed();
    let report = error.report().expect("a report").clone();
    assert_eq!(wactl::cli::code_of(&error), 1, "{error}");
    assert_eq!(report.outcome, Outcome::RolledBack, "{error}");
    assert_eq!(
        report.error.as_ref().map(|e| e.code.as_str()),
        Some(code),
        "{error}"
    );
    assert_eq!(report.rolled_back_to, Some(1));
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V1));
    let revisions = revision::list(&client, &t.namespace, "t")
        .await
        .expect("revisions");
    assert_eq!(
        revisions.last().map(|r| r.status),
        Some(RevisionStatus::RolledBack)
    );
    eprintln!("{test}: failed and rolled back in {elapsed:?}:\n{error}");
    report
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_crash_loop_fails_fast_with_events_and_rolls_back() {
    let report = fails_and_rolls_back("crash", "crashloop", "crash_loop", "").await;
    let message = &report.error.expect("error").message;
    assert!(message.contains("crash-looping"), "{message}");
    assert!(
        message.contains("logs:"),
        "says whether logs could be read: {message}"
    );
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn an_image_pull_failure_fails_fast_and_rolls_back() {
    let report = fails_and_rolls_back("pull", "imagepull", "image_pull", "").await;
    let message = &report.error.expect("error").message;
    assert!(
        message.contains("ErrImagePull") || message.contains("ImagePullBackOff"),
        "{message}"
    );
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn pods_that_never_get_ready_hit_the_progress_deadline() {
    let report = fails_and_rolls_back(
        "ready",
        "never-ready",
        "progress_deadline_exceeded",
        "rollout:\n  progressDeadlineSeconds: 10\n",
    )
    .await;
    let message = &report.error.expect("error").message;
    assert!(message.contains("not ready"), "{message}");
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn unschedulable_pods_fail_and_the_cli_exits_1_with_one_json_report() {
    let t = TestEnv::new("t-sched", "");
    let env = t.load();
    let client = client(&env).await;
    deploy(&client, &env, &options(IMAGE_V1))
        .await
        .expect("first deploy");
    t.write("resources:\n  requests: { cpu: \"500\", memory: 64Mi }\n  limits: { cpu: \"500\", memory: 256Mi }\n");
    let out = t.wactl(&[
        "deploy",
        "t",
        "--skip-build",
        "--image",
        IMAGE_V1,
        "--output",
        "json",
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .next()
        .expect("a JSON report")
        .expect("valid JSON");
    assert_eq!(report["outcome"], "rolled_back", "{stdout}");
    assert_eq!(report["error"]["code"], "unschedulable", "{stdout}");
    assert!(
        report["stages"].as_array().is_some_and(|s| s
            .iter()
            .any(|s| s["name"] == "rollback track" && s["status"] == "ok")),
        "{stdout}"
    );
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_protected_environment_without_a_terminal_is_refused() {
    let t = TestEnv::new("t-protected", "protected: true\n");
    let out = t.wactl(&["deploy", "t", "--skip-build", "--image", IMAGE_V1]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rerun with --yes"));
    let out = t.wactl(&["deploy", "t", "--skip-build", "--image", IMAGE_V1, "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn the_dev_environment_deploys_cleanly() {
    let t = TestEnv::new("t-dev", "");
    // `dev` itself, moved to the test's namespace (which the drop of `t` deletes).
    let dev = std::fs::read_to_string(t.dir.path().join("dev.yaml")).expect("dev.yaml");
    let moved = dev.replace(
        "namespace: world-address-dev\n",
        &format!("namespace: {}\n", t.namespace),
    );
    assert_ne!(moved, dev, "dev.yaml names its namespace");
    std::fs::write(t.dir.path().join("dev.yaml"), moved).expect("write");
    let env = wactl::config::load(t.dir.path(), "dev").expect("dev.yaml");
    let client = client(&env).await;
    t.create_volumes(
        &client,
        &t.dir.path().join("volumes"),
        &[
            "data-address-service-postgres-0",
            "data-address-service-redis-0",
        ],
    )
    .await;
    let out = t.wactl(&[
        "deploy",
        "dev",
        "--yes",
        "--skip-build",
        "--image",
        IMAGE_V1,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("StatefulSet"), "{stderr}");
    let out = t.wactl(&[
        "deploy",
        "dev",
        "--yes",
        "--skip-build",
        "--image",
        IMAGE_V1,
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to change"));
    let out = t.wactl(&["destroy", "dev", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Job in `namespace`: one pod, `annotations` on it (kwok fault stages), `extra` spec.
fn job(name: &str, annotations: serde_json::Value, extra: serde_json::Value) -> Job {
    let mut spec = serde_json::json!({
        "backoffLimit": 0,
        "template": {
            "metadata": { "annotations": annotations },
            "spec": { "restartPolicy": "Never",
                "containers": [{ "name": "migrate", "image": IMAGE_V1 }] }
        }
    });
    if let (Some(spec), serde_json::Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": name }, "spec": spec
    }))
    .expect("job")
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn jobs_are_tracked_to_completion_and_a_failed_job_says_why() {
    let t = TestEnv::new("t-job", "");
    let env = t.load();
    let client = client(&env).await;
    t.create_namespace(&client).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &t.namespace);
    let job_ref = |name: &str| cluster::ObjectRef {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        namespace: Some(t.namespace.clone()),
        name: name.into(),
    };
    let progress = std::sync::Mutex::new(Vec::new());
    let on_progress = |e: &cluster::TrackEvent| progress.lock().expect("lock").push(e.clone());

    // kwok plays a Job's pod as running for a moment, then succeeded.
    jobs.create(
        &PostParams::default(),
        &job("ok", serde_json::json!({}), serde_json::json!({})),
    )
    .await
    .expect("create job");
    cluster::track(
        &client,
        &t.namespace,
        &[job_ref("ok")],
        Duration::from_secs(60),
        &on_progress,
    )
    .await
    .expect("the job completes");
    let done = progress
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("a line");
    assert!(done.done, "{done}");
    assert_eq!(done.note, "complete");

    // A pod that never finishes runs into the Job's active deadline: the Job fails.
    jobs.create(
        &PostParams::default(),
        &job(
            "stuck",
            serde_json::json!({ "wactl.dev/kwok-fault": "never-ready" }),
            serde_json::json!({ "activeDeadlineSeconds": 3 }),
        ),
    )
    .await
    .expect("create job");
    let failure = cluster::track(
        &client,
        &t.namespace,
        &[job_ref("stuck")],
        Duration::from_secs(60),
        &on_progress,
    )
    .await
    .expect_err("the job fails");
    assert_eq!(
        failure.reason,
        cluster::FailureReason::JobFailed,
        "{failure}"
    );
    assert!(failure.message.contains("DeadlineExceeded"), "{failure}");
    assert!(failure.message.contains("active deadline 3 s"), "{failure}");
    assert!(failure.pod.is_some(), "names the pod: {failure}");
    assert!(
        !failure.logs.is_empty() || failure.logs_note.is_some(),
        "says whether logs could be read: {failure}"
    );
    eprintln!("{failure}");
}

/// `--image` with a tag the registry does not have is refused before anything is applied
/// (pods could never start); a reference pinned by digest is taken as given.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn an_image_tag_the_registry_does_not_have_is_refused_before_the_apply() {
    let t = TestEnv::new("t-notag", "");
    let env = t.load();
    let client = client(&env).await;
    let missing = "127.0.0.1:5000/world-address/address-service:no-such-tag";
    let commands: [&[&str]; 2] = [
        &["diff", "t", "--image", missing],
        &["deploy", "t", "--yes", "--skip-build", "--image", missing],
    ];
    for args in commands {
        let verb = args[0];
        let out = t.wactl(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {stderr}");
        assert!(
            stderr.contains("127.0.0.1:5000 has no image 127.0.0.1:5000/world-address/address-service:no-such-tag"),
            "{verb}: {stderr}"
        );
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &t.namespace);
    assert!(
        deployments
            .get_opt("address-service")
            .await
            .expect("get")
            .is_none(),
        "nothing applied"
    );
    assert!(
        revision::list(&client, &t.namespace, "t")
            .await
            .expect("revisions")
            .is_empty(),
        "no revision recorded"
    );
    // The tag that exists is pinned to the digest the registry gives.
    let out = t.wactl(&["deploy", "t", "--yes", "--skip-build", "--image", IMAGE_V1]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V1));
}
