//! `wactl deploy` and friends against the real control plane of `cargo xtask infra up`
//! (kube-apiserver, controllers, kwok nodes). Each test deploys to its own namespace.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use wactl::cluster::{self, Access, LockOptions, RevisionStatus, revision};
use wactl::config::Environment;
use wactl::deploy::{self, DeployError, DeployOptions, Outcome};
use wactl::ui::deploy::DeployUi;

const IMAGE_V1: &str = "127.0.0.1:5000/world-address/address-service:v1";
const IMAGE_V2: &str = "127.0.0.1:5000/world-address/address-service:v2";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubeconfig() -> String {
    std::env::var("KUBECONFIG")
        .expect("KUBECONFIG is not set: run `eval \"$(cargo xtask infra env)\"` after `cargo xtask infra up`")
}

/// A copy of the environments with one more, `t`, deploying to a namespace of its own.
struct TestEnv {
    dir: tempfile::TempDir,
    namespace: String,
}

impl TestEnv {
    fn new(test: &str, extra_yaml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for entry in std::fs::read_dir(root().join("environments")).expect("environments") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, dir.path().join(path.file_name().expect("name")))
                    .expect("copy");
            }
        }
        let namespace = format!("wactl-t-{test}-{}", std::process::id());
        let env = Self { dir, namespace };
        env.write(extra_yaml);
        env
    }

    /// (Re)writes `t.yaml`: base plus `extra_yaml`.
    fn write(&self, extra_yaml: &str) {
        let yaml = format!(
            "extends: base\nimage:\n  registry: 127.0.0.1:5000\n  tag: dev\ncluster:\n  kubeconfig: {}\n  context: wactl-dev\n  namespace: {}\nreplicas: 2\ngithub:\n  environment: t\n  deployments: false\n{extra_yaml}",
            kubeconfig(),
            self.namespace
        );
        std::fs::write(self.dir.path().join("t.yaml"), yaml).expect("write t.yaml");
    }

    fn load(&self) -> Environment {
        wactl::config::load(self.dir.path(), "t").expect("t.yaml is valid")
    }

    /// A template override directory whose Deployment pods carry a kwok fault annotation.
    fn fault_templates(&self, fault: &str) -> PathBuf {
        let dir = self.dir.path().join(format!("templates-{fault}"));
        std::fs::create_dir_all(dir.join("k8s")).expect("mkdir");
        let original = std::fs::read_to_string(root().join("templates/k8s/deployment.yaml.tera"))
            .expect("template");
        let patched = original.replacen(
            "      annotations:\n",
            &format!("      annotations:\n        wactl.dev/kwok-fault: {fault}\n"),
            1,
        );
        assert_ne!(
            patched, original,
            "the deployment template has no pod annotations"
        );
        std::fs::write(dir.join("k8s/deployment.yaml.tera"), patched).expect("write");
        dir
    }

    fn wactl(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_wactl"))
            .args([
                "--env-dir",
                self.dir.path().to_str().expect("utf-8"),
                "--no-color",
            ])
            .args(args)
            .env_remove("CI")
            .output()
            .expect("run wactl")
    }
}

async fn client(env: &Environment) -> Client {
    cluster::connect(env, &Access::default())
        .await
        .expect("cluster reachable")
}

fn options(image: &str) -> DeployOptions {
    DeployOptions {
        image: Some(image.to_owned()),
        skip_build: true,
        timeout: Some(Duration::from_secs(60)),
        ..DeployOptions::default()
    }
}

async fn deploy(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
) -> Result<deploy::DeployReport, DeployError> {
    deploy::deploy(client, env, options, &DeployUi::silent(true)).await
}

async fn live_image(client: &Client, namespace: &str) -> String {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = api.get("address-service").await.expect("deployment");
    d.spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].image.clone().unwrap_or_default())
        .unwrap_or_default()
}

async fn cleanup(client: &Client, env: &Environment) {
    let _ = deploy::destroy(
        client,
        env,
        &DeployOptions {
            force_unlock: true,
            ..Default::default()
        },
        &DeployUi::silent(true),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn lifecycle_first_deploy_noop_image_change_prune_history_rollback_destroy() {
    let t = TestEnv::new(
        "life",
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
    assert_eq!(live_image(&client, &t.namespace).await, IMAGE_V1);

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
        stdout.contains(&format!("+        image: {IMAGE_V2}")),
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
    assert_eq!(live_image(&client, &t.namespace).await, IMAGE_V2);

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
    assert_eq!(live_image(&client, &t.namespace).await, IMAGE_V1);
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
    let t = TestEnv::new("conflict", "");
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
    cleanup(&client, &env).await;
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_second_deploy_is_refused_until_the_lease_expires() {
    let t = TestEnv::new("lock", "");
    let env = t.load();
    let client = client(&env).await;
    deploy(&client, &env, &options(IMAGE_V1))
        .await
        .expect("first deploy");
    // A deploy that is killed: it holds the lease and never releases it.
    let killed = cluster::acquire_lock(
        &client,
        &t.namespace,
        "t",
        &LockOptions {
            holder: "ana@ci (pid 4242)".into(),
            duration: Duration::from_secs(10),
            force_unlock: false,
        },
    )
    .await
    .expect("lock");
    drop(killed);
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
    // It expires by itself.
    tokio::time::sleep(Duration::from_secs(11)).await;
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
    cleanup(&client, &env).await;
}

/// Deploys v1, then v2 with `fault`; expects the failure `code`, a rollback to v1, and
/// the failed revision recorded as rolled back.
async fn fails_and_rolls_back(
    test: &str,
    fault: &str,
    code: &str,
    extra_yaml: &str,
) -> deploy::DeployReport {
    let t = TestEnv::new(test, extra_yaml);
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
    assert_eq!(live_image(&client, &t.namespace).await, IMAGE_V1);
    let revisions = revision::list(&client, &t.namespace, "t")
        .await
        .expect("revisions");
    assert_eq!(
        revisions.last().map(|r| r.status),
        Some(RevisionStatus::RolledBack)
    );
    eprintln!("{test}: failed and rolled back in {elapsed:?}:\n{error}");
    cleanup(&client, &env).await;
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
    let t = TestEnv::new("sched", "");
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
    cleanup(&client, &env).await;
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_protected_environment_without_a_terminal_is_refused() {
    let t = TestEnv::new("protected", "protected: true\n");
    let out = t.wactl(&["deploy", "t", "--skip-build", "--image", IMAGE_V1]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rerun with --yes"));
    let out = t.wactl(&["deploy", "t", "--skip-build", "--image", IMAGE_V1, "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = t.load();
    cleanup(&client(&env).await, &env).await;
}

/// Pre-binds one hostPath volume per StatefulSet claim: the test cluster has no provisioner.
async fn volumes_for(client: &Client, namespace: &str, claims: &[&str]) {
    let api: Api<PersistentVolume> = Api::all(client.clone());
    for claim in claims {
        let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": { "name": format!("{namespace}-{claim}") },
            "spec": { "capacity": { "storage": "10Gi" }, "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": { "path": format!("/tmp/wactl-pv/{namespace}/{claim}") },
                "claimRef": { "namespace": namespace, "name": claim } }
        }))
        .expect("pv");
        api.create(&PostParams::default(), &pv)
            .await
            .expect("create pv");
    }
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn the_dev_environment_deploys_cleanly() {
    let t = TestEnv::new("dev", "");
    let dev = std::fs::read_to_string(t.dir.path().join("dev.yaml")).expect("dev.yaml");
    let namespace = format!("wactl-t-dev-{}", std::process::id());
    std::fs::write(
        t.dir.path().join("dev.yaml"),
        dev.replace(
            "namespace: world-address-dev",
            &format!("namespace: {namespace}"),
        ),
    )
    .expect("write");
    let env = wactl::config::load(t.dir.path(), "dev").expect("dev.yaml");
    let client = client(&env).await;
    volumes_for(
        &client,
        &namespace,
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
        "127.0.0.1:5000/world-address/address-service:dev",
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
        "127.0.0.1:5000/world-address/address-service:dev",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to change"));
    cleanup(&client, &env).await;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for claim in [
        "data-address-service-postgres-0",
        "data-address-service-redis-0",
    ] {
        let _ = pvs
            .delete(&format!("{namespace}-{claim}"), &Default::default())
            .await;
    }
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
    let t = TestEnv::new("job", "");
    let env = t.load();
    let client = client(&env).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                serde_json::json!({ "metadata": { "name": t.namespace.as_str() } }),
            )
            .expect("namespace"),
        )
        .await
        .expect("create namespace");
    // The namespace's default ServiceAccount must exist before pods are admitted.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), &t.namespace);
    let ready = kube::runtime::wait::await_condition(
        accounts,
        "default",
        kube::runtime::wait::conditions::is_created(),
    );
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("default ServiceAccount within 30 s")
        .expect("watch");
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
    let _ = namespaces.delete(&t.namespace, &Default::default()).await;
}
