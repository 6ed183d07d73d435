//! A canary's weight in the Ingress, against the API server (kwok nodes): the Ingress routes
//! to the stable pods' own Service; while a step is analysed a canary Service (the canary's
//! pods only) and a canary Ingress carrying ingress-nginx's `canary-weight` of that step
//! stand beside it; promotion, an abort and the removal of a killed deploy's leftover take
//! both away.
//!
//! No ingress controller runs here (none can be installed: no image can be pulled), so what
//! is checked is what wactl puts in the API server, not how ingress-nginx splits requests.
//! The analysis reads a Prometheus of Debian's package on 127.0.0.1 whose constant answer
//! (`vector(1)` passes, `vector(0)` fails) decides each release.

mod support;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Output, Stdio};
use std::time::Duration;
use support::{LocalPrometheus, TestEnv};

const CANARY: &str = "address-service-canary";
const TRACK: &str = "wactl.dev/track";
const WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";

/// The test environment: base on kwok nodes with an nginx Ingress, the bundled Prometheus
/// (its pods never run here) and a two-step canary judged at `url` by one metric of
/// constant `value`; `timeout` differs between releases so that the pods change.
fn definition(url: &str, value: u32, timeout: &str) -> String {
    format!(
        "ingress:\n  enabled: true\n  host: address.t.example\n\
         components:\n  prometheus: {{ enabled: true, scrapeInterval: 1s }}\n\
         monitoring:\n  mode: bundled\n\
         rollout:\n  strategy: canary\n  steps:\n    - {{ weight: 25, analyze: 4s }}\n    - {{ weight: 50, analyze: 4s }}\n\
         \x20 analysis:\n    interval: 2s\n    failureLimit: 1\n    inconclusiveLimit: 3\n    baseline: false\n\
         \x20   prometheus: \"{url}\"\n\
         \x20   metrics:\n      - {{ name: verdict, query: 'label_replace(vector({value}), \"track\", \"$track\", \"\", \"\")', min: 0.5 }}\n\
         config:\n  REQUEST_TIMEOUT: {timeout}\n"
    )
}

fn deploy_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "--output",
        "json",
        "deploy",
        "t",
        "--yes",
        "--skip-build",
        "--image",
        support::IMAGE_V1,
    ];
    args.extend_from_slice(extra);
    args
}

/// A finished deploy's exit code, JSON report and stderr.
fn finished(out: Output) -> (Option<i32>, Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr:\n{stderr}"));
    (out.status.code(), report, stderr)
}

/// The Service name each of the Ingress's paths routes to.
fn backends(ingress: &Ingress) -> Vec<String> {
    ingress
        .spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .flat_map(|r| r.http.iter().flat_map(|h| h.paths.iter()))
        .filter_map(|p| Some(p.backend.service.as_ref()?.name.clone()))
        .collect()
}

async fn ingress(client: &Client, namespace: &str, name: &str) -> Option<Ingress> {
    Api::<Ingress>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .expect("get Ingress")
}

async fn service(client: &Client, namespace: &str, name: &str) -> Option<Service> {
    Api::<Service>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .expect("get Service")
}

fn selector(service: &Service) -> BTreeMap<String, String> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// The main Ingress routes to the stable-only Service, which selects the stable track; the
/// Service of every pod (NodePort, smoke, Prometheus) is as it was, without a track.
async fn assert_stable_routing(client: &Client, namespace: &str) {
    let main = ingress(client, namespace, "address-service")
        .await
        .expect("the main Ingress");
    assert_eq!(backends(&main), ["address-service-stable"]);
    assert!(
        !main
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(WEIGHT),
        "the main Ingress carries no weight"
    );
    let stable = service(client, namespace, "address-service-stable")
        .await
        .expect("the stable-only Service");
    assert_eq!(
        selector(&stable).get(TRACK).map(String::as_str),
        Some("stable")
    );
    let shared = service(client, namespace, "address-service")
        .await
        .expect("the Service of every pod");
    assert!(!selector(&shared).contains_key(TRACK), "{shared:?}");
}

async fn assert_canary_traffic_gone(client: &Client, namespace: &str) {
    assert!(
        ingress(client, namespace, CANARY).await.is_none(),
        "canary Ingress left"
    );
    assert!(
        service(client, namespace, CANARY).await.is_none(),
        "canary Service left"
    );
}

/// What a step showed while it was analysed: its weight, the canary Ingress's uid and
/// backends, and how many pods the canary Service selects (all of them canary pods).
#[derive(Debug, Clone)]
struct Seen {
    weight: u32,
    uid: String,
    backends: Vec<String>,
    canary_pods: usize,
}

/// One look at the canary Ingress and Service; `None` while there is no weighted Ingress
/// (or it went during the look: a removal takes the Ingress first, then the Service, then
/// the pods). Asserts that the canary Service selects only (and some) canary pods.
async fn look(client: &Client, namespace: &str) -> Option<Seen> {
    let canary = ingress(client, namespace, CANARY).await?;
    let weight = canary
        .metadata
        .annotations
        .as_ref()?
        .get(WEIGHT)?
        .parse()
        .expect("a number");
    assert_eq!(
        canary
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("nginx.ingress.kubernetes.io/canary"))
            .map(String::as_str),
        Some("true")
    );
    let uid = canary.metadata.uid.clone();
    let still = || async {
        ingress(client, namespace, CANARY)
            .await
            .map(|i| i.metadata.uid)
            == Some(uid.clone())
    };
    let Some(service) = service(client, namespace, CANARY).await else {
        assert!(!still().await, "a canary Ingress without its Service");
        return None;
    };
    let selector = selector(&service);
    assert_eq!(selector.get(TRACK).map(String::as_str), Some("canary"));
    let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&labels.join(",")))
        .await
        .expect("pods")
        .items;
    let stable = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{TRACK}=stable")))
        .await
        .expect("pods")
        .items;
    assert!(!stable.is_empty(), "stable pods run beside the canary");
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with(&format!("{CANARY}-")), "{name}");
        assert!(
            !stable.iter().any(|s| s.metadata.name == pod.metadata.name),
            "{name} is a stable pod"
        );
    }
    if pods.is_empty() {
        assert!(!still().await, "the canary Service selects no pod");
        return None;
    }
    Some(Seen {
        weight,
        backends: backends(&canary),
        uid: uid.unwrap_or_default(),
        canary_pods: pods.len(),
    })
}

/// Watches the canary Ingress (every 500 ms, at most 10 minutes) while `deploy` runs in a
/// thread; each distinct weight seen (in order) with its first look, and the deploy's output.
async fn watch_steps(
    client: &Client,
    namespace: &str,
    deploy: std::thread::JoinHandle<Output>,
    skip_uid: Option<&str>,
) -> (Vec<Seen>, Output) {
    let mut seen: Vec<Seen> = Vec::new();
    let mut looks = 0;
    while !deploy.is_finished() {
        looks += 1;
        assert!(looks < 1200, "the deploy did not end within 10 minutes");
        if let Some(now) = look(client, namespace).await
            && Some(now.uid.as_str()) != skip_uid
            && seen.last().is_none_or(|s| s.weight != now.weight)
        {
            seen.push(now);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (seen, deploy.join().expect("deploy thread"))
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn each_step_weighs_a_canary_ingress_that_promotion_abort_and_leftover_removal_take_away() {
    let prometheus = LocalPrometheus::start();
    let t = TestEnv::new("canary-ingress", "");
    t.write(&definition(&prometheus.url, 1, "10s"));
    let env = t.load();
    let client = support::client(&env).await;
    let namespace = t.namespace.clone();
    t.create_volumes(
        &client,
        &t.dir.path().join("volumes"),
        &["data-address-service-prometheus-0"],
    )
    .await;

    // 1. The first deploy rolls (no stable track yet) and routes the Ingress to stable.
    let (code, first, stderr) = finished(t.wactl(&deploy_args(&[])));
    assert_eq!(code, Some(0), "first deploy: {stderr}");
    assert_eq!(first["outcome"], "succeeded", "{first:#}");
    assert!(
        first["canary"]["skipped"]
            .as_str()
            .unwrap_or_default()
            .contains("track label"),
        "{first:#}"
    );
    assert_stable_routing(&client, &namespace).await;
    assert_canary_traffic_gone(&client, &namespace).await;

    // 2. A good release: 25% then 50% in the canary Ingress, then promoted and gone.
    t.write(&definition(&prometheus.url, 1, "11s"));
    let mut command = t.command(&deploy_args(&[]));
    let running = std::thread::spawn(move || command.output().expect("run wactl"));
    let (seen, out) = watch_steps(&client, &namespace, running, None).await;
    let (code, good, stderr) = finished(out);
    assert_eq!(code, Some(0), "good release: {stderr}");
    assert_eq!(good["outcome"], "succeeded", "{good:#}");
    let weights: Vec<u32> = seen.iter().map(|s| s.weight).collect();
    assert_eq!(weights, [25, 50], "{seen:?}\n{stderr}");
    for step in &seen {
        assert_eq!(step.backends, [CANARY], "{step:?}");
    }
    // One Ingress whose weight the second step changed in place (server-side apply).
    assert_eq!(seen[0].uid, seen[1].uid, "{seen:?}");
    assert!(seen[1].canary_pods >= seen[0].canary_pods, "{seen:?}");
    assert!(
        stderr.contains("takes 25% of the Ingress's requests")
            && stderr.contains("takes 50% of the Ingress's requests"),
        "{stderr}"
    );
    assert_canary_traffic_gone(&client, &namespace).await;
    assert_stable_routing(&client, &namespace).await;

    // 3. A deploy killed during its first step leaves the canary Service and Ingress;
    // `status` shows the weight.
    t.write(&definition(&prometheus.url, 1, "12s"));
    let mut child = t
        .command(&deploy_args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wactl");
    let mut looks = 0;
    let leftover = loop {
        looks += 1;
        assert!(looks < 600, "no canary Ingress within 5 minutes");
        if let Some(now) = look(&client, &namespace).await {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(leftover.weight, 25, "{leftover:?}");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = child.wait();
    assert!(
        ingress(&client, &namespace, CANARY).await.is_some(),
        "a killed deploy leaves its canary Ingress"
    );
    let status = t.wactl(&["status", "t"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("Ingress address-service-canary takes 25% of the Ingress's requests"),
        "{status}"
    );

    // 4. A bad release removes the leftover first (its Service and Ingress too), then runs
    // its own first step and is stopped: its canary Service and Ingress go with it.
    t.write(&definition(&prometheus.url, 0, "13s"));
    let mut command = t.command(&deploy_args(&["--force-unlock"]));
    let running = std::thread::spawn(move || command.output().expect("run wactl"));
    let (seen, out) = watch_steps(&client, &namespace, running, Some(&leftover.uid)).await;
    let (code, bad, stderr) = finished(out);
    assert_eq!(code, Some(1), "bad release: {stderr}");
    assert_eq!(bad["error"]["code"], "canary_failed", "{bad:#}");
    let removed: Vec<&str> = bad["canary"]["leftover_removed"]
        .as_array()
        .unwrap_or_else(|| panic!("no canary.leftover_removed: {bad:#}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for kind in ["Ingress", "Service", "Deployment"] {
        assert!(
            removed
                .iter()
                .any(|r| r.contains(kind) && r.contains(CANARY)),
            "{kind} not among {removed:?}"
        );
    }
    let weights: Vec<u32> = seen.iter().map(|s| s.weight).collect();
    assert_eq!(weights, [25], "its own first step only: {seen:?}\n{stderr}");
    assert_ne!(seen[0].uid, leftover.uid);
    assert_canary_traffic_gone(&client, &namespace).await;
    assert_stable_routing(&client, &namespace).await;
    let config =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &namespace)
            .get("address-service")
            .await
            .expect("configmap")
            .data
            .unwrap_or_default();
    assert_eq!(
        config.get("REQUEST_TIMEOUT").map(String::as_str),
        Some("11s"),
        "stable keeps the good release"
    );
}
