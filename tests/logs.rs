//! `wactl logs --env ENV` for an environment that deploys to a cluster: the pods of the
//! workload, streamed through the API server, each line prefixed by its pod. On the real
//! node of `cargo xtask infra up --real-node`, because kwok's simulated pods have no logs.
//!
//! The workload is a Deployment the test makes itself (two pods of the registry's Debian
//! image echoing known lines), named and labelled as wactl names the service's: the point
//! is the log stream, not a deploy (`tests/real_node.rs` covers that).

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::TestEnv;

const IMAGE: &str = "127.0.0.1:5000/wactl.local/redis:7";
const REPLICAS: usize = 2;

/// Two pods on the real node that print `line N of POD` three times, then a tick a second.
async fn echoing_workload(t: &TestEnv, client: &Client) {
    let labels = serde_json::json!({
        "app.kubernetes.io/name": "address-service",
        "app.kubernetes.io/instance": "t",
    });
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "address-service", "namespace": t.namespace },
        "spec": {
            "replicas": REPLICAS,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "nodeSelector": { "wactl.dev/node": "real" },
                    "tolerations": [{ "key": "wactl.dev/real-node", "operator": "Exists" }],
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "echo",
                        "image": IMAGE,
                        "command": ["/bin/sh", "-c",
                            "for i in 1 2 3; do echo \"line $i of $HOSTNAME\"; done; while true; do echo \"tick of $HOSTNAME\"; sleep 1; done"],
                    }],
                },
            },
        },
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(client.clone(), &t.namespace)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
}

/// The pods' names once all are running (at most 180 s: the first pull on the real node).
async fn running_pods(t: &TestEnv, client: &Client) -> BTreeSet<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &t.namespace);
    let started = Instant::now();
    loop {
        let list = pods.list(&ListParams::default()).await.expect("pods");
        let running: BTreeSet<String> = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if running.len() == REPLICAS {
            return running;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{} of {REPLICAS} pods running after 180 s: see `kubectl -n {} get pods`",
            running.len(),
            t.namespace
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn logs_stream_every_pod_of_the_service_prefixed_by_pod() {
    let t = TestEnv::extending("logs", "dev-real", "");
    let env = t.load();
    let client = support::client(&env).await;
    t.create_namespace(&client).await;
    echoing_workload(&t, &client).await;
    let pods = running_pods(&t, &client).await;
    // The three lines are printed at start, right after the pod runs; on a busy machine
    // its shell may take a moment to print them, so ask again until they are all there.
    let expected: Vec<String> = pods
        .iter()
        .flat_map(|pod| (1..=3).map(move |i| format!("{pod} | line {i} of {pod}")))
        .collect();
    let asked = Instant::now();
    let stdout = loop {
        let out = t.wactl(&["logs", "--env", "t"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let missing: Vec<&String> = expected
            .iter()
            .filter(|line| !stdout.lines().any(|l| l == line.as_str()))
            .collect();
        if missing.is_empty() {
            break stdout;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "missing after 30 s: {missing:?}\n{stdout}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Every line names the pod that printed it.
    let mut checked = 0;
    for line in stdout.lines() {
        let (source, text) = line.split_once(" | ").expect("prefixed");
        assert!(pods.contains(source), "{line}");
        assert!(text.ends_with(&format!("of {source}")), "{line}");
        checked += 1;
    }
    assert!(checked >= 3 * REPLICAS, "{checked} lines");

    // --tail 1: one line per pod.
    let out = t.wactl(&["logs", "--env", "t", "--tail", "1"]);
    let tailed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(tailed.lines().count(), REPLICAS, "{tailed}");

    // -f keeps streaming: new ticks of every pod arrive after it started.
    let mut child = t
        .command(&["logs", "--env", "t", "-f", "--tail", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wactl logs -f");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut ticked = BTreeSet::new();
        let mut lines = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines += 1;
            if let Some((source, "tick")) = line
                .split_once(" | ")
                .and_then(|(s, text)| text.split_once(" of ").map(|(t, _)| (s, t)))
            {
                ticked.insert(source.to_owned());
            }
            if ticked.len() == REPLICAS || lines >= 200 {
                break;
            }
        }
        ticked
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    let ticked = reader.join().expect("reader");
    assert_eq!(ticked, pods, "ticks streamed by -f within 30 s");

    // A workload the namespace does not have: exit 2, naming those it has.
    let out = t.wactl(&["logs", "--env", "t", "nope"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "namespace {} has no Deployment or StatefulSet nope (workloads: address-service)",
            t.namespace
        )),
        "{stderr}"
    );
}
