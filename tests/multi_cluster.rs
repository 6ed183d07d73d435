//! One environment in two clusters (`clusters:`): the first control plane of `cargo xtask
//! infra up` (context `wactl-dev`, Kubernetes 1.36) and the second (`wactl-dev-2`, 1.35).
//! Waves, parallel rollouts, per-cluster rollback, `--cluster` subsets, a cluster whose API
//! server dies mid-deploy. Each test deploys to a namespace of its own in both clusters and
//! removes both on drop.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::DeleteParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{IMAGE_V1, IMAGE_V2, IMAGE_V3, TestEnv, live_image, pinned, root};
use wactl::cluster::{self, Access, LockOptions};
use wactl::deploy::fleet::{self, ClusterOutcome};
use wactl::deploy::{DeployEvent, DeployObserver, DeployOptions, EventKind, Stage};

fn second_kubeconfig() -> String {
    std::env::var("WACTL_KUBECONFIG_2").expect(
        "WACTL_KUBECONFIG_2 is not set: run `cargo xtask infra up --second-cluster`, then \
         `eval \"$(cargo xtask infra env)\"`",
    )
}

fn second_context() -> String {
    std::env::var("WACTL_CONTEXT_2").unwrap_or_else(|_| "wactl-dev-2".to_owned())
}

async fn second_client() -> Client {
    let file = Kubeconfig::read_from(second_kubeconfig()).expect("kubeconfig-2 reads");
    let options = KubeConfigOptions {
        context: Some(second_context()),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(file, &options)
        .await
        .expect("context of the second cluster");
    Client::try_from(config).expect("client")
}

/// `t` in clusters `one` (wactl-dev) and `two` (the second cluster), with `extra` after the
/// cluster list; removes the namespace from the second cluster on drop (the first goes with
/// [`TestEnv`]).
struct Fleet {
    t: TestEnv,
}

impl Fleet {
    fn new(prefix: &str, clusters: &str) -> Self {
        let t = TestEnv::new(prefix, clusters);
        Self { t }
    }

    /// `clusters:` with `one` and `two` as given (a flow mapping body each) and `extra`.
    fn clusters(one: &str, two: &str, extra: &str) -> String {
        format!(
            "clusters:\n  - {{ name: one, context: wactl-dev{one} }}\n  - {{ name: two, context: {}{two} }}\n{extra}",
            second_context()
        )
    }

    fn write(&self, one: &str, two: &str, extra: &str) {
        self.t.write(&Self::clusters(one, two, extra));
    }

    /// `wactl --output json deploy t --skip-build --image IMAGE --templates DIR ARGS`.
    fn deploy(&self, image: &str, args: &[&str]) -> (Option<i32>, Value, String) {
        let templates = self.fault_templates();
        let mut all = vec![
            "--output",
            "json",
            "deploy",
            "t",
            "--skip-build",
            "--image",
            image,
            "--templates",
            templates.to_str().expect("utf-8"),
            "--timeout",
            "60s",
        ];
        all.extend_from_slice(args);
        let out = self.t.wactl(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.code(), json, stderr)
    }

    /// Templates whose pods carry the kwok fault named by the cluster's `FAULT` setting,
    /// so one cluster of the two can fail.
    fn fault_templates(&self) -> PathBuf {
        let dir = self.t.dir.path().join("templates-fleet");
        std::fs::create_dir_all(dir.join("k8s")).expect("mkdir");
        let original = std::fs::read_to_string(root().join("templates/k8s/deployment.yaml.tera"))
            .expect("template");
        let patched = original.replacen(
            "      annotations:\n",
            "      annotations:\n{%- if env.config.FAULT is defined %}\n        wactl.dev/kwok-fault: \"{{ env.config.FAULT }}\"\n{%- endif %}\n",
            1,
        );
        assert_ne!(patched, original, "the template has pod annotations");
        std::fs::write(dir.join("k8s/deployment.yaml.tera"), patched).expect("write");
        dir
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let namespace = self.t.namespace.clone();
        let cleaned = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let client = second_client().await;
                let _ = Api::<Namespace>::all(client)
                    .delete(&namespace, &DeleteParams::default())
                    .await;
            });
        });
        let _ = cleaned.join();
    }
}

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clusters"]
        .as_array()
        .expect("a clusters array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no row for {name} in {report:#}"))
}

fn outcome(report: &Value, name: &str) -> String {
    row(report, name)["outcome"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn first_client(t: &TestEnv) -> Client {
    let env = t.load();
    let target = env
        .targets()
        .into_iter()
        .find(|t| t.name.as_deref() == Some("one"))
        .expect("cluster one");
    cluster::connect(&target.environment, &Access::default())
        .await
        .expect("first cluster")
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn two_clusters_of_one_wave_are_deployed_together_and_reported_each() {
    let fleet = Fleet::new("mc-one-wave", &Fleet::clusters("", "", ""));
    let (code, report, stderr) = fleet.deploy(IMAGE_V1, &[]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    assert_eq!(report["clusters"].as_array().map(Vec::len), Some(2));
    for name in ["one", "two"] {
        let r = row(&report, name);
        assert_eq!(r["outcome"], "succeeded", "{r:#}");
        assert_eq!(r["wave"], 1);
        assert_eq!(r["revision"], 1);
        assert_eq!(r["error"], Value::Null);
        assert_eq!(r["namespace"], fleet.t.namespace.as_str());
        assert!(
            stderr.contains(&format!("[{name}] ")),
            "CI-style lines name each cluster: {stderr}"
        );
    }
    let one = first_client(&fleet.t).await;
    let two = second_client().await;
    assert_eq!(live_image(&one, &fleet.t.namespace).await, pinned(IMAGE_V1));
    assert_eq!(live_image(&two, &fleet.t.namespace).await, pinned(IMAGE_V1));

    let (code, report, stderr) = fleet.deploy(IMAGE_V2, &[]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(row(&report, "one")["revision"], 2);
    assert_eq!(row(&report, "two")["revision"], 2);
    assert_eq!(live_image(&one, &fleet.t.namespace).await, pinned(IMAGE_V2));
    assert_eq!(live_image(&two, &fleet.t.namespace).await, pinned(IMAGE_V2));
    // The same image again: nothing to change in either cluster.
    let (code, report, _) = fleet.deploy(IMAGE_V2, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(report["outcome"], "unchanged", "{report:#}");

    // A reviewed plan for cluster `two` alone, applied there alone.
    let plan = fleet.t.dir.path().join("two.plan.json");
    let plan = plan.to_str().expect("utf-8");
    let templates = fleet.fault_templates();
    let templates = templates.to_str().expect("utf-8");
    let out = fleet.t.wactl(&[
        "diff",
        "t",
        "--image",
        IMAGE_V1,
        "--templates",
        templates,
        "--save-plan",
        plan,
        "--cluster",
        "two",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fleet.t.wactl(&["deploy", "t", "--plan", plan, "--yes"]);
    assert_eq!(out.status.code(), Some(2), "several clusters selected");
    // Picked the wrong cluster: the plan names the cluster it was made for.
    let out = fleet
        .t
        .wactl(&["deploy", "t", "--plan", plan, "--yes", "--cluster", "one"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("another cluster"), "{stderr}");
    let out = fleet
        .t
        .wactl(&["deploy", "t", "--plan", plan, "--yes", "--cluster", "two"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(live_image(&two, &fleet.t.namespace).await, pinned(IMAGE_V1));
    assert_eq!(live_image(&one, &fleet.t.namespace).await, pinned(IMAGE_V2));
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_failure_in_the_second_wave_rolls_back_only_there_unless_asked_for_all() {
    let fleet = Fleet::new("mc-waves", "");
    fleet.write("", ", wave: 2", "");
    let (code, report, stderr) = fleet.deploy(IMAGE_V1, &[]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    let waves = stderr.find("wave 1: one").zip(stderr.find("wave 2: two"));
    assert!(
        waves.is_some_and(|(first, second)| first < second),
        "wave 1 before wave 2: {stderr}"
    );

    // Cluster two's pods crash-loop: it rolls back, one keeps its new revision.
    fleet.write("", ", wave: 2, config: { FAULT: crashloop }", "");
    let (code, report, stderr) = fleet.deploy(IMAGE_V2, &[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(outcome(&report, "one"), "succeeded");
    assert_eq!(row(&report, "one")["revision"], 2);
    assert_eq!(outcome(&report, "two"), "rolled_back", "{report:#}");
    assert_eq!(row(&report, "two")["rolled_back_to"], 1);
    assert!(
        row(&report, "two")["error"]
            .as_str()
            .is_some_and(|e| e.contains("crash")),
        "{report:#}"
    );
    let one = first_client(&fleet.t).await;
    let two = second_client().await;
    assert_eq!(live_image(&one, &fleet.t.namespace).await, pinned(IMAGE_V2));
    assert_eq!(live_image(&two, &fleet.t.namespace).await, pinned(IMAGE_V1));

    // Asked to: the cluster that succeeded is rolled back too.
    fleet.write(
        "",
        ", wave: 2, config: { FAULT: crashloop }",
        "fleet: { onFailure: rollback-all }\n",
    );
    let (code, report, stderr) = fleet.deploy(IMAGE_V3, &[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(outcome(&report, "one"), "undone", "{report:#}");
    assert_eq!(row(&report, "one")["rolled_back_to"], 2);
    assert_eq!(outcome(&report, "two"), "rolled_back");
    assert_eq!(live_image(&one, &fleet.t.namespace).await, pinned(IMAGE_V2));
    assert_eq!(live_image(&two, &fleet.t.namespace).await, pinned(IMAGE_V1));

    // A failed first wave: the second does not start.
    fleet.write(", config: { FAULT: crashloop }", ", wave: 2", "");
    let (code, report, stderr) = fleet.deploy(IMAGE_V3, &[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(outcome(&report, "one"), "rolled_back");
    assert_eq!(outcome(&report, "two"), "skipped");
    assert_eq!(live_image(&two, &fleet.t.namespace).await, pinned(IMAGE_V1));
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_locked_cluster_fails_alone_and_cluster_subsets_touch_only_themselves() {
    let fleet = Fleet::new("mc-lock", &Fleet::clusters("", "", ""));
    // Only `two`: `one` is never touched.
    let (code, report, stderr) = fleet.deploy(IMAGE_V1, &["--cluster", "two"]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["clusters"].as_array().map(Vec::len), Some(1));
    assert_eq!(outcome(&report, "two"), "succeeded");
    let one = first_client(&fleet.t).await;
    let two = second_client().await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(one.clone(), &fleet.t.namespace);
    assert!(
        deployments
            .get_opt("address-service")
            .await
            .ok()
            .flatten()
            .is_none(),
        "cluster one was left alone"
    );
    // The other verbs take the same subsets, a heading per cluster.
    let history = fleet.t.wactl(&["history", "t", "--cluster", "two"]);
    let text = String::from_utf8_lossy(&history.stdout);
    assert_eq!(history.status.code(), Some(0), "{text}");
    assert!(text.starts_with("cluster two:\n"), "{text}");
    assert!(!text.contains("cluster one:"), "{text}");
    let status = fleet.t.wactl(&["status", "t"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{text}");
    let (one_at, two_at) = (text.find("cluster one:"), text.find("cluster two:"));
    assert!(one_at.zip(two_at).is_some_and(|(a, b)| a < b), "{text}");
    assert!(text.contains("never deployed"), "one is untouched: {text}");
    // With --output json: one document, an entry naming each cluster with its result under
    // the verb's name.
    let status = fleet.t.wactl(&["--output", "json", "status", "t"]);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_slice(&status.stdout).expect("one JSON document");
    let names: Vec<&str> = json["clusters"]
        .as_array()
        .expect("a clusters array")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["one", "two"], "{json:#}");
    assert_eq!(
        json["clusters"][0]["status"]["current"],
        Value::Null,
        "{json:#}"
    );
    assert_eq!(
        json["clusters"][1]["status"]["current"]["number"], 1,
        "{json:#}"
    );
    assert_eq!(json["clusters"][1]["outcome"], "succeeded", "{json:#}");
    let history = fleet
        .t
        .wactl(&["--output", "json", "history", "t", "--cluster", "two"]);
    let json: Value = serde_json::from_slice(&history.stdout).expect("one JSON document");
    assert_eq!(
        json["clusters"].as_array().map(Vec::len),
        Some(1),
        "{json:#}"
    );
    assert_eq!(json["clusters"][0]["name"], "two", "{json:#}");
    assert_eq!(json["clusters"][0]["history"][0]["number"], 1, "{json:#}");
    let history = fleet.t.wactl(&["history", "t", "--cluster", "three"]);
    assert_eq!(history.status.code(), Some(2));
    // An unknown name is a usage error that lists the names.
    let (code, report, stderr) = fleet.deploy(IMAGE_V1, &["--cluster", "three"]);
    assert_eq!(code, Some(2), "{report:#}\n{stderr}");
    assert!(stderr.contains("clusters: one, two"), "{stderr}");

    // Another deploy holds two's lock: two is refused, one goes on.
    let _held = cluster::acquire_lock(
        &two,
        &fleet.t.namespace,
        "t",
        &LockOptions {
            holder: "ana@ci (pid 4242)".into(),
            duration: Duration::from_secs(600),
            force_unlock: false,
            renew_every: None,
        },
    )
    .await
    .expect("lock in two");
    let (code, report, stderr) = fleet.deploy(IMAGE_V2, &[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(outcome(&report, "one"), "succeeded");
    assert_eq!(outcome(&report, "two"), "failed");
    assert!(
        row(&report, "two")["error"]
            .as_str()
            .is_some_and(|e| e.contains("being deployed by ana@ci (pid 4242)")),
        "{report:#}"
    );
    assert_eq!(live_image(&one, &fleet.t.namespace).await, pinned(IMAGE_V2));
    assert_eq!(live_image(&two, &fleet.t.namespace).await, pinned(IMAGE_V1));
}

/// A TCP proxy on 127.0.0.1 in front of an API server, that the test can cut: the
/// listener and every open connection end at once.
struct Proxy {
    port: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let spawned = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                spawned.lock().expect("lock").push(connection);
            }
        });
        tasks.lock().expect("lock").push(accept);
        Self { port, tasks }
    }

    /// The API server "dies": nothing listens on the port any more.
    fn cut(&self) {
        for task in self.tasks.lock().expect("lock").iter() {
            task.abort();
        }
    }
}

/// Cuts the proxy when cluster `two` starts tracking, and notes the order clusters finish in.
struct CutOnTrack {
    proxy: Proxy,
    finished: Mutex<Vec<String>>,
}

impl DeployObserver for CutOnTrack {
    fn event(&self, event: &DeployEvent) {
        match (&event.cluster, &event.kind) {
            (Some(c), EventKind::StageStarted(Stage::Track)) if c == "two" => self.proxy.cut(),
            (Some(c), EventKind::Finished(_)) => {
                self.finished.lock().expect("lock").push(c.clone());
            }
            _ => {}
        }
    }
}

/// kubeconfig-2 with its server replaced by the proxy.
fn proxied_kubeconfig(dir: &Path, port: u16) -> (PathBuf, String) {
    let text = std::fs::read_to_string(second_kubeconfig()).expect("kubeconfig-2");
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("a server line")
        .to_owned();
    let proxied = text.replace(
        &format!("server: https://{server}"),
        &format!("server: https://127.0.0.1:{port}"),
    );
    let path = dir.join("kubeconfig-proxied");
    std::fs::write(&path, proxied).expect("write kubeconfig");
    (path, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn an_api_server_dying_mid_tracking_fails_its_cluster_and_not_the_other() {
    let fleet = Fleet::new("mc-killed", "");
    let text = std::fs::read_to_string(second_kubeconfig()).expect("kubeconfig-2");
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("a server line")
        .to_owned();
    let proxy = Proxy::start(server).await;
    let (kubeconfig, _) = proxied_kubeconfig(fleet.t.dir.path(), proxy.port);
    fleet.write("", &format!(", kubeconfig: {}", kubeconfig.display()), "");
    let env = fleet.t.load();
    let targets = fleet::select(&env, &[]).expect("targets");
    assert_eq!(
        targets[1].kubeconfig.as_deref(),
        Some(kubeconfig.as_path()),
        "the cluster's own kubeconfig wins over KUBECONFIG"
    );
    let observer = CutOnTrack {
        proxy,
        finished: Mutex::new(Vec::new()),
    };
    let options = DeployOptions {
        image: Some(IMAGE_V1.to_owned()),
        skip_build: true,
        timeout: Some(Duration::from_secs(20)),
        lock_duration: Duration::from_secs(10),
        ..DeployOptions::default()
    };
    let error = fleet::deploy(&env, &targets, &Access::default(), &options, &observer)
        .await
        .expect_err("cluster two fails");
    let report = error.report().expect("a report").clone();
    let one = &report.clusters[0];
    let two = &report.clusters[1];
    assert_eq!(
        (one.name.as_str(), one.outcome),
        ("one", ClusterOutcome::Succeeded)
    );
    assert_eq!(two.name, "two");
    assert!(
        matches!(
            two.outcome,
            ClusterOutcome::Failed | ClusterOutcome::RollbackFailed
        ),
        "{two:?}"
    );
    let reason = two.error.clone().unwrap_or_default();
    assert!(!reason.is_empty(), "two fails with its own reason");
    assert!(
        reason.contains("Connect") || reason.contains("did not finish"),
        "the reason is the lost API server: {reason}"
    );
    assert!(one.error.is_none(), "{one:?}");
    assert!(
        observer
            .finished
            .lock()
            .expect("lock")
            .iter()
            .any(|c| c == "one"),
        "one finished its deploy"
    );
    let client = first_client(&fleet.t).await;
    assert_eq!(
        live_image(&client, &fleet.t.namespace).await,
        pinned(IMAGE_V1)
    );
}
