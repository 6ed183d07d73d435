//! Canary releases on the real node, judged by the bundled Prometheus, under a steady 50
//! requests/s through the NodePort: a release that fails real requests (the API key
//! switched on by mistake) is stopped at its first step with the stable pods unchanged; a
//! good one goes through every step and is promoted without a failed request; with
//! Prometheus unreachable the analysis is inconclusive and nothing is promoted.
//!
//! One test, because the deploys share a namespace (`dev-monitor` in one of its own, made
//! from nothing and removed on drop) and must not overlap.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::DeleteParams;
use kube::{Api, Client};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{LocalPrometheus, TestEnv};

const ENVIRONMENT: &str = "t";
/// The Prometheus-URL test's service, and its bundled Prometheus' own NodePort.
const URL_NODE_PORT: u16 = 30096;
const PROMETHEUS_NODE_PORT: u16 = 30097;
/// Not dev-real's 30080 nor the real-node test's 30081.
const NODE_PORT: u16 = 30093;
/// The stop test's, so it never waits for the other's Service to go.
const STOP_NODE_PORT: u16 = 30095;
/// The image dev-monitor deploys; the releases differ by settings only.
const IMAGE: &str = "127.0.0.1:5000/world-address/address-service:dev-monitor";
const CLAIMS: [&str; 3] = [
    "data-address-service-postgres-0",
    "data-address-service-redis-0",
    "data-address-service-prometheus-0",
];
const RATE: u32 = 50;
const WORKERS: u32 = 8;
const BODY: &str = r#"{"country_code":"DE","city":"Berlin","postal_code":"10117","street_address":"Unter den Linden 77"}"#;

fn definition(config: &str) -> String {
    definition_on(NODE_PORT, config)
}

/// The test environment's definition with its NodePort `port` and extra `config` lines.
fn definition_on(port: u16, config: &str) -> String {
    format!(
        "replicas: 2\nservice:\n  nodePort: {port}\nsmoke:\n  url: http://127.0.0.1:{port}\n\
         rollout:\n  strategy: canary\n  steps:\n    - {{ weight: 25, analyze: 20s }}\n    - {{ weight: 50, analyze: 20s }}\n\
         \x20 analysis: {{ interval: 10s, failureLimit: 1, inconclusiveLimit: 2 }}\n\
         config:\n  RATE_LIMIT_PER_MINUTE: \"600000\"\n{config}"
    )
}

/// One request's fate: when it was sent and whether it got a 2xx.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    ok: bool,
}

/// Validate requests at [`RATE`] per second through the NodePort, each on a new connection.
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start() -> Self {
        Self::start_on(NODE_PORT)
    }

    /// The load through the NodePort `port`.
    fn start_on(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let interval = Duration::from_secs_f64(f64::from(WORKERS) / f64::from(RATE));
        let workers = (0..WORKERS)
            .map(|i| {
                let stop = Arc::clone(&stop);
                let samples = Arc::clone(&samples);
                std::thread::spawn(move || {
                    std::thread::sleep(interval * i / WORKERS);
                    let mut next = Instant::now();
                    // Bounded: at most 20 minutes of requests.
                    let deadline = Instant::now() + Duration::from_secs(1200);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let at = Instant::now();
                        let ok = validate(addr);
                        samples.lock().expect("samples").push(Sample { at, ok });
                        next += interval;
                        match next.checked_duration_since(Instant::now()) {
                            Some(wait) => std::thread::sleep(wait),
                            None => next = Instant::now(),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            samples,
            workers,
        }
    }

    /// (sent, failed) between `from` and `to`.
    fn between(&self, from: Instant, to: Instant) -> (usize, usize) {
        let samples = self.samples.lock().expect("samples");
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= from && s.at <= to)
            .collect();
        (inside.len(), inside.iter().filter(|s| !s.ok).count())
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// One validate request; true for a 2xx answer.
fn validate(addr: SocketAddr) -> bool {
    let timeout = Duration::from_secs(5);
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let request = format!(
        "POST /v1/addresses/validate HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let head = String::from_utf8_lossy(&response[..response.len().min(16)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .is_some_and(|s| (200..300).contains(&s))
}

fn deploy(t: &TestEnv) -> (Output, Value, Duration) {
    let started = Instant::now();
    let out = t
        .command(&[
            "--output",
            "json",
            "deploy",
            ENVIRONMENT,
            "--yes",
            "--skip-build",
            "--image",
            IMAGE,
        ])
        .output()
        .expect("run wactl");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .next()
        .unwrap_or_else(|| {
            panic!(
                "no JSON report; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .expect("valid JSON");
    (out, report, took)
}

/// `wactl deploy` as a child process, to be stopped by a signal.
fn spawn_deploy(t: &TestEnv, extra: &[&str]) -> std::process::Child {
    t.command(&[
        "deploy",
        ENVIRONMENT,
        "--yes",
        "--skip-build",
        "--image",
        IMAGE,
    ])
    .args(extra)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start wactl")
}

fn signal(child: &std::process::Child, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill {signal} {}", child.id());
}

/// Waits (up to 120 s) until a canary Deployment has a ready pod.
async fn wait_for_canary(client: &Client, namespace: &str) {
    let api = Api::<Deployment>::namespaced(client.clone(), namespace);
    let mut tries = 0;
    while tries < 120 {
        tries += 1;
        let ready = api
            .get_opt("address-service-canary")
            .await
            .expect("get")
            .and_then(|d| d.status?.ready_replicas)
            .unwrap_or(0);
        if ready > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("no ready canary after {tries} tries");
}

async fn stable_config(
    client: &Client,
    namespace: &str,
) -> std::collections::BTreeMap<String, String> {
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get("address-service")
        .await
        .expect("configmap")
        .data
        .unwrap_or_default()
}

async fn stable_generation(client: &Client, namespace: &str) -> i64 {
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .get("address-service")
        .await
        .expect("deployment")
        .metadata
        .generation
        .unwrap_or_default()
}

async fn canary_exists(client: &Client, namespace: &str) -> bool {
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .get_opt("address-service-canary")
        .await
        .expect("get")
        .is_some()
}

/// `extra` on top of `parent`, rendered (no cluster needed).
fn rendered(parent: &str, extra: &str) -> wactl::render::Rendered {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(support::root().join("environments")).expect("environments") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
        }
    }
    std::fs::write(
        dir.path().join("c.yaml"),
        format!("extends: {parent}\n{extra}"),
    )
    .expect("write");
    let env = wactl::config::load(dir.path(), "c").unwrap_or_else(|e| panic!("{e}"));
    wactl::render::render(&env, &Default::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn object<'a>(r: &'a wactl::render::Rendered, kind: &str, name: &str) -> &'a Value {
    &r.manifests
        .iter()
        .find(|m| m.kind == kind && m.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
        .object
}

#[test]
fn the_two_tracks_are_rendered_consistently_for_both_discoveries() {
    let canary = "rollout: { strategy: canary }\n";
    let dns = rendered("dev-monitor", canary);
    let deployment = object(&dns, "Deployment", "address-service");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["wactl.dev/track"],
        "stable"
    );
    assert!(
        deployment["spec"]["selector"]["matchLabels"]
            .get("wactl.dev/track")
            .is_none(),
        "the selector is immutable: it stays as it was"
    );
    assert_eq!(
        object(&dns, "Service", "address-service-pods")["spec"]["selector"]["wactl.dev/track"],
        "stable"
    );
    assert_eq!(
        object(&dns, "Service", "address-service-canary-pods")["spec"]["selector"]["wactl.dev/track"],
        "canary"
    );
    assert!(
        object(&dns, "Service", "address-service")["spec"]["selector"]
            .get("wactl.dev/track")
            .is_none(),
        "the Service sends requests to both tracks"
    );
    let config: Value = serde_saphyr::from_str(&dns.files["prometheus/prometheus-kubernetes.yml"])
        .expect("prometheus.yml");
    let jobs = config["scrape_configs"].as_array().expect("jobs");
    let names: Vec<&str> = jobs.iter().filter_map(|j| j["job_name"].as_str()).collect();
    assert_eq!(
        names,
        ["address-service", "address-service-canary", "prometheus"]
    );
    assert_eq!(
        jobs[1]["relabel_configs"],
        serde_json::json!([
            { "target_label": "job", "replacement": "address-service" },
            { "target_label": "track", "replacement": "canary" }
        ])
    );
    assert_eq!(
        jobs[0]["relabel_configs"],
        serde_json::json!([{ "target_label": "track", "replacement": "stable" }])
    );

    let kubernetes = rendered("staging", canary);
    let config: Value =
        serde_saphyr::from_str(&kubernetes.files["prometheus/prometheus-kubernetes.yml"])
            .expect("prometheus.yml");
    let relabel = config["scrape_configs"][0]["relabel_configs"]
        .as_array()
        .expect("relabel");
    assert!(
        relabel.iter().any(|r| r["source_labels"][0]
            == "__meta_kubernetes_pod_label_wactl_dev_track"
            && r["target_label"] == "track"),
        "{relabel:?}"
    );

    // A rolling environment renders exactly as before: no track anywhere.
    let rolling = rendered("dev-monitor", "");
    assert!(!rolling.manifests.iter().any(|m| m.name.contains("canary")));
    assert!(
        !serde_json::to_string(
            &rolling
                .manifests
                .iter()
                .map(|m| &m.object)
                .collect::<Vec<_>>()
        )
        .expect("json")
        .contains("wactl.dev/track")
    );
}

/// Builds and pushes the service image the releases deploy (`IMAGE`, the definition's tag),
/// once per test process: the registry of a fresh machine (or after `infra reset`) holds no
/// image, and no test may rely on another having pushed one.
fn push_image_once(t: &TestEnv) {
    static PUSHED: std::sync::Once = std::sync::Once::new();
    PUSHED.call_once(|| {
        let out = t.wactl(&["build", ENVIRONMENT, "--push"]);
        assert!(
            out.status.success(),
            "wactl build {ENVIRONMENT} --push:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// dev-monitor in a namespace of its own (`wactl-<prefix>-<pid>`) with a NodePort and
/// `strategy: canary`, with what its first deploy needs.
async fn canary_env(prefix: &str, port: u16) -> (TestEnv, Client, String) {
    // The definition goes through `write`, which each release rewrites.
    let t = TestEnv::extending(prefix, "dev-monitor", "");
    t.write(&definition_on(port, ""));
    push_image_once(&t);
    let env = t.load();
    let client = support::client(&env).await;
    let namespace = t.namespace.clone();
    t.create_namespace(&client).await;
    let password = format!("c{:x}", std::process::id() ^ 0x0c0f_fee5);
    t.create_secret(
        &client,
        "address-service-postgres",
        serde_json::json!({
            "password": password,
            "url": format!("postgres://address:{password}@address-service-postgres:5432/address"),
        }),
    )
    .await;
    t.create_volumes(&client, &t.dir.path().join("volumes"), &CLAIMS)
        .await;

    (t, client, namespace)
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn canary_stops_a_bad_release_promotes_a_good_one_and_fails_closed_without_prometheus() {
    let (t, client, namespace) = canary_env("canary", NODE_PORT).await;

    // 1. The first deploy is a rolling one: there are no stable pods to compare with.
    let (out, first, _) = deploy(&t);
    assert!(out.status.success(), "first deploy: {first:#}");
    assert_eq!(first["outcome"], "succeeded", "{first:#}");
    let skipped = first["canary"]["skipped"].as_str().unwrap_or_default();
    assert!(skipped.contains("track label"), "{first:#}");

    let load = Load::start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (warm_sent, warm_failed) =
        load.between(Instant::now() - Duration::from_secs(3), Instant::now());
    assert!(
        warm_sent > 50,
        "the load generator runs: {warm_sent} requests in 3 s"
    );
    assert_eq!(warm_failed, 0, "the first release serves every request");

    // 2. A bad release: every request without an API key gets 401; readiness passes.
    let generation = stable_generation(&client, &namespace).await;
    t.write(&definition("  REQUIRE_API_KEY: \"true\"\n"));
    let from = Instant::now();
    let (out, bad, bad_took) = deploy(&t);
    let to = Instant::now();
    let (bad_sent, bad_failed) = load.between(from, to);
    assert_eq!(out.status.code(), Some(1), "{bad:#}");
    assert_eq!(bad["outcome"], "failed", "{bad:#}");
    assert_eq!(bad["error"]["code"], "canary_failed", "{bad:#}");
    let message = bad["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("step 1")
            && message.contains("success-rate")
            && message.contains("min 0.95"),
        "{message}"
    );
    let steps = bad["canary"]["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "stopped at its first step: {bad:#}");
    assert_eq!(steps[0]["verdict"], "failed");
    assert!(
        !steps[0]["measurements"]
            .as_array()
            .expect("measurements")
            .is_empty(),
        "{bad:#}"
    );
    assert!(
        !canary_exists(&client, &namespace).await,
        "the canary is removed"
    );
    assert_eq!(
        stable_generation(&client, &namespace).await,
        generation,
        "the stable Deployment never changed"
    );
    assert!(
        !stable_config(&client, &namespace)
            .await
            .contains_key("REQUIRE_API_KEY")
    );
    let history = t.wactl(&["history", ENVIRONMENT]);
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(history.contains("canary failed"), "{history}");
    // The revision records the step's evidence as data, as the deploy report showed it.
    let recorded = t.wactl(&["--output", "json", "history", ENVIRONMENT]);
    let recorded: Value = serde_json::from_slice(&recorded.stdout).expect("history JSON");
    let last = recorded
        .as_array()
        .and_then(|r| r.last())
        .expect("a revision");
    assert_eq!(last["status"], "failed", "{last:#}");
    assert_eq!(last["canary"]["steps"], bad["canary"]["steps"], "{last:#}");
    let metrics: Vec<&Value> = last["canary"]["steps"][0]["measurements"]
        .as_array()
        .expect("measurements")
        .iter()
        .flat_map(|m| m["metrics"].as_array().into_iter().flatten())
        .filter(|m| m["name"] == "success-rate")
        .collect();
    assert!(!metrics.is_empty(), "{last:#}");
    assert!(
        metrics.iter().all(|m| m["bound"]["min"] == 0.95),
        "{last:#}"
    );
    assert!(metrics.iter().any(|m| m["verdict"] == "failed"), "{last:#}");
    // 1 canary pod next to 2 stable ones: about a third of the requests while it served.
    eprintln!(
        "CANARY bad release: {bad_failed} of {bad_sent} requests failed during a {bad_took:?} deploy; {message}"
    );
    assert!(bad_failed > 0, "the canary got real traffic");
    assert!(
        bad_failed * 2 < bad_sent,
        "failures are bounded by the canary's share: {bad_failed} of {bad_sent}"
    );

    // 3. A good release goes through both steps and is promoted, without a failed request.
    // (Not `REQUIRE_API_KEY: "false"`: the service takes any value of that variable as on.)
    t.write(&definition("  REQUEST_TIMEOUT: 11s\n"));
    let from = Instant::now();
    let (out, good, good_took) = deploy(&t);
    let to = Instant::now();
    let (good_sent, good_failed) = load.between(from, to);
    assert!(out.status.success(), "{good:#}");
    assert_promoted(&good, &client, &namespace, "11s").await;
    assert!(
        !canary_exists(&client, &namespace).await,
        "the canary is removed"
    );
    let recorded = t.wactl(&["--output", "json", "history", ENVIRONMENT]);
    let recorded: Value = serde_json::from_slice(&recorded.stdout).expect("history JSON");
    let last = recorded
        .as_array()
        .and_then(|r| r.last())
        .expect("a revision");
    assert_eq!(last["status"], "succeeded", "{last:#}");
    assert_eq!(last["canary"]["steps"], good["canary"]["steps"], "{last:#}");
    eprintln!(
        "CANARY good release: {good_failed} of {good_sent} requests failed during a {good_took:?} deploy"
    );
    assert!(good_sent > 100, "{good_sent}");
    assert_eq!(good_failed, 0, "a good release fails no request");

    // 4. Prometheus unreachable (its Service gone, so the API server's proxy finds no
    // endpoint): inconclusive, fail closed, nothing promoted. (Not scaled to 0: the
    // replicas field would then belong to another field manager and the plan stops there.)
    Api::<Service>::namespaced(client.clone(), &namespace)
        .delete("address-service-prometheus", &DeleteParams::default())
        .await
        .expect("delete Prometheus' Service");
    let generation = stable_generation(&client, &namespace).await;
    t.write(&definition("  REQUEST_TIMEOUT: 12s\n"));
    let (out, blind, _) = deploy(&t);
    load.stop();
    assert_eq!(out.status.code(), Some(1), "{blind:#}");
    assert_eq!(blind["error"]["code"], "canary_failed", "{blind:#}");
    let message = blind["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("inconclusive"), "{message}");
    assert!(message.contains("Prometheus"), "{message}");
    assert_eq!(stable_generation(&client, &namespace).await, generation);
    assert_eq!(
        stable_config(&client, &namespace)
            .await
            .get("REQUEST_TIMEOUT")
            .map(String::as_str),
        Some("11s"),
        "nothing promoted"
    );
    assert!(!canary_exists(&client, &namespace).await);
}

/// SIGINT during a step removes the canary and marks the revision interrupted; after
/// SIGKILL `wactl status` reports the canary left behind and the next deploy removes it.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_stopped_canary_is_removed_and_a_killed_one_by_the_next_deploy() {
    let (t, client, namespace) = canary_env("canary-stop", STOP_NODE_PORT).await;
    let (out, first, _) = deploy(&t);
    assert!(out.status.success(), "first deploy: {first:#}");

    // SIGINT during a step: the canary goes with the deploy, the revision is interrupted.
    t.write(&definition_on(STOP_NODE_PORT, "  REQUEST_TIMEOUT: 13s\n"));
    let generation = stable_generation(&client, &namespace).await;
    let child = spawn_deploy(&t, &[]);
    wait_for_canary(&client, &namespace).await;
    signal(&child, "-INT");
    let out = child.wait_with_output().expect("deploy ends");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        !canary_exists(&client, &namespace).await,
        "removed on SIGINT"
    );
    assert_eq!(stable_generation(&client, &namespace).await, generation);

    // SIGKILL during a step leaves the canary: `status` says so, the next deploy removes
    // it (taking over the killed deploy's lock) before running its own.
    let mut child = spawn_deploy(&t, &[]);
    wait_for_canary(&client, &namespace).await;
    signal(&child, "-KILL");
    let _ = child.wait();
    assert!(
        canary_exists(&client, &namespace).await,
        "a killed deploy leaves it"
    );
    let status = t.wactl(&["status", ENVIRONMENT]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("canary address-service-canary in progress"),
        "{status}"
    );
    t.write(&definition_on(STOP_NODE_PORT, "  REQUEST_TIMEOUT: 14s\n"));
    let out = t
        .command(&[
            "deploy",
            ENVIRONMENT,
            "--yes",
            "--skip-build",
            "--image",
            IMAGE,
            "--force-unlock",
        ])
        .output()
        .expect("run wactl");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Without traffic its own canary has no data and fails closed (exit 1); what counts
    // here is that the leftover went first.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(stderr.contains("removed a leftover canary"), "{stderr}");
    assert!(!canary_exists(&client, &namespace).await);
}

/// The `t` deploy through the CLI with `IMAGE_V1` (kwok nodes): exit code, JSON report,
/// stderr.
fn deploy_v1(t: &TestEnv) -> (Option<i32>, Value, String) {
    let out = t
        .command(&[
            "--output",
            "json",
            "deploy",
            "t",
            "--yes",
            "--skip-build",
            "--image",
            support::IMAGE_V1,
        ])
        .output()
        .expect("run wactl");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr:\n{stderr}"));
    (out.status.code(), report, stderr)
}

/// A canary left by a killed deploy is removed by the next deploy even when that deploy
/// has nothing else to change (it takes the lock for it and says so), but not while
/// another deploy holds the lock (the canary may be that one's). On kwok nodes: the
/// leftover is made as wactl makes a canary, from the recorded revision's objects.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn an_unchanged_deploy_removes_a_leftover_canary_under_the_lock() {
    use wactl::cluster::{self, LockOptions, Resolver, revision};
    let t = TestEnv::new("canary-left", "");
    let env = t.load();
    let client = support::client(&env).await;
    let (code, first, stderr) = deploy_v1(&t);
    assert_eq!(code, Some(0), "first deploy: {stderr}");
    assert_eq!(first["outcome"], "succeeded", "{first:#}");

    // The leftover: what a deploy killed during its first step leaves.
    let revisions = revision::list(&client, &t.namespace, "t")
        .await
        .expect("revisions");
    assert_eq!(revisions.len(), 1);
    let leftover = wactl::deploy::canary::canary_objects(&env, &revisions[0].objects, 1)
        .expect("a Deployment and ConfigMap to make a canary of");
    assert_eq!(leftover.len(), 2);
    cluster::apply_all(
        &Resolver::new(client.clone()),
        &leftover,
        Default::default(),
    )
    .await
    .expect("apply the leftover canary");
    assert!(canary_exists(&client, &t.namespace).await);

    // Another deploy holds the lock: the canary may be its own, so it stays (and is told).
    let other = cluster::acquire_lock(
        &client,
        &t.namespace,
        "t",
        &LockOptions {
            holder: "ana@ci (pid 4242)".into(),
            duration: Duration::from_secs(600),
            force_unlock: false,
            renew_every: None,
        },
    )
    .await
    .expect("lock");
    let (code, held, stderr) = deploy_v1(&t);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(held["outcome"], "unchanged", "{held:#}");
    assert!(
        stderr.contains("warning: a canary is live") && stderr.contains("ana@ci"),
        "{stderr}"
    );
    assert!(
        canary_exists(&client, &t.namespace).await,
        "left to its deploy"
    );
    other.release().await;

    // Nothing to change, but the leftover goes: under the lock, said on stderr and in JSON.
    let (code, again, stderr) = deploy_v1(&t);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(again["outcome"], "unchanged", "{again:#}");
    assert!(
        stderr.contains("removed a leftover canary from an earlier deploy"),
        "{stderr}"
    );
    let removed: Vec<&str> = again["canary"]["leftover_removed"]
        .as_array()
        .unwrap_or_else(|| panic!("no canary.leftover_removed: {again:#}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(
        removed
            .iter()
            .any(|r| r.contains("Deployment") && r.contains("address-service-canary")),
        "{removed:?}"
    );
    assert!(!canary_exists(&client, &t.namespace).await, "removed");
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), &t.namespace)
            .get_opt("address-service-canary")
            .await
            .expect("get")
            .is_none(),
        "its ConfigMap too"
    );
    let after = revision::list(&client, &t.namespace, "t")
        .await
        .expect("revisions");
    assert_eq!(after.len(), 1, "an unchanged deploy records no revision");

    // And the lock is free again: the next one is plainly unchanged, without a note.
    let (code, last, stderr) = deploy_v1(&t);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(last["outcome"], "unchanged", "{last:#}");
    assert!(last["canary"].is_null(), "{last:#}");
    assert!(!stderr.contains("canary"), "{stderr}");
}

/// `rollout.analysis.prometheus`: a URL is read directly (no API server in the path: the
/// client given points nowhere), a bad query is refused with Prometheus' reason, and a URL
/// that does not answer is an error naming that URL, never an answer from elsewhere.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_prometheus_url_is_queried_directly_and_an_unreachable_one_says_so() {
    use wactl::cluster::prometheus::{self, PrometheusAt, PrometheusError};
    let local = LocalPrometheus::start();
    // An API server that does not exist: whatever reaches Prometheus does not go through it.
    let nowhere = Client::try_from(kube::Config::new(
        "http://127.0.0.1:9".parse().expect("uri"),
    ))
    .expect("client");
    let at = PrometheusAt::Url(local.url.clone());
    let mut tries = 0;
    let up = loop {
        tries += 1;
        match prometheus::query(&nowhere, &at, r#"up{job="self"}"#).await {
            Ok(samples) if !samples.is_empty() => break samples,
            _ if tries < 60 => tokio::time::sleep(Duration::from_millis(500)).await,
            other => panic!("no answer after {tries} tries: {other:?}"),
        }
    };
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].number(), Some(1.0), "{up:?}");
    assert_eq!(up[0].metric.get("job").map(String::as_str), Some("self"));
    let targets = prometheus::targets(&nowhere, &at).await.expect("targets");
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(targets[0].health, "up", "{targets:?}");

    let refused = prometheus::query(&nowhere, &at, "sum(")
        .await
        .expect_err("a bad query");
    assert!(
        matches!(refused, PrometheusError::Refused { ref error_type, .. } if error_type == "bad_data"),
        "{refused}"
    );
    assert!(refused.to_string().contains(&local.url), "{refused}");

    // The same Prometheus stopped: the URL does not answer, and the error says which.
    let url = local.url.clone();
    drop(local);
    let gone = prometheus::query(&nowhere, &PrometheusAt::Url(url.clone()), "up")
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(gone, PrometheusError::UnreachableUrl { .. }),
        "{gone}"
    );
    assert!(
        gone.to_string()
            .starts_with(&format!("cannot reach Prometheus at {url} (/api/v1/query")),
        "{gone}"
    );
}

/// `rollout.analysis.prometheus` on the real node: the bundled Prometheus reached at
/// 127.0.0.1 through a NodePort of its own (made by the test). With a URL that does not
/// answer the canary fails closed although the service proxy works (no fallback); with the
/// NodePort's URL a good release is judged and promoted although the proxy is broken (its
/// Service deleted): the URL is the only path either way.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_canary_judged_at_a_prometheus_url_uses_that_url_only() {
    let (t, client, namespace) = canary_env("canary-url", URL_NODE_PORT).await;
    let with_url = |url: &str, config: &str| {
        definition_on(URL_NODE_PORT, config).replace(
            "inconclusiveLimit: 2 }",
            &format!("inconclusiveLimit: 2, prometheus: \"{url}\" }}"),
        )
    };
    let (out, first, _) = deploy(&t);
    assert!(out.status.success(), "first deploy: {first:#}");

    // A URL nothing answers at, with the proxy working: inconclusive, nothing promoted.
    let generation = stable_generation(&client, &namespace).await;
    t.write(&with_url("http://127.0.0.1:1", "  REQUEST_TIMEOUT: 15s\n"));
    let (out, blind, _) = deploy(&t);
    assert_eq!(out.status.code(), Some(1), "{blind:#}");
    assert_eq!(blind["error"]["code"], "canary_failed", "{blind:#}");
    let message = blind["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("inconclusive") && message.contains("http://127.0.0.1:1"),
        "{message}"
    );
    assert_eq!(stable_generation(&client, &namespace).await, generation);
    assert!(!canary_exists(&client, &namespace).await);

    // The bundled Prometheus on a NodePort of its own; its ClusterIP Service (the proxy's
    // way in) gone.
    let services = Api::<Service>::namespaced(client.clone(), &namespace);
    let bundled = services
        .get("address-service-prometheus")
        .await
        .expect("Prometheus' Service");
    let selector = bundled.spec.and_then(|s| s.selector).expect("selector");
    let direct: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": "prometheus-direct", "namespace": namespace },
        "spec": {
            "type": "NodePort",
            "selector": selector,
            "ports": [{ "port": 9090, "targetPort": 9090, "nodePort": PROMETHEUS_NODE_PORT }]
        }
    }))
    .expect("service");
    services
        .create(&Default::default(), &direct)
        .await
        .expect("create the NodePort");
    services
        .delete("address-service-prometheus", &DeleteParams::default())
        .await
        .expect("delete Prometheus' Service");
    let url = format!("http://127.0.0.1:{PROMETHEUS_NODE_PORT}");
    // reqwest comes without a crypto provider (wactl installs ring's).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut tries = 0;
    while tries < 60 {
        tries += 1;
        let ready = reqwest::get(format!("{url}/-/ready"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        tries < 60,
        "Prometheus not ready at {url} after {tries} tries"
    );

    let load = Load::start_on(URL_NODE_PORT);
    tokio::time::sleep(Duration::from_secs(3)).await;
    t.write(&with_url(&url, "  REQUEST_TIMEOUT: 16s\n"));
    let (out, good, _) = deploy(&t);
    load.stop();
    assert!(out.status.success(), "{good:#}");
    assert_promoted(&good, &client, &namespace, "16s").await;
}

/// The good release of `report` passed both steps and its stable pods now run with
/// `REQUEST_TIMEOUT` `timeout` (what the release changed).
async fn assert_promoted(report: &Value, client: &Client, namespace: &str, timeout: &str) {
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    let steps = report["canary"]["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{report:#}");
    for step in steps {
        assert_eq!(step["verdict"], "passed", "{report:#}");
    }
    assert_eq!(
        stable_config(client, namespace)
            .await
            .get("REQUEST_TIMEOUT")
            .map(String::as_str),
        Some(timeout),
        "promoted"
    );
}
