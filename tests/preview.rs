//! `wactl preview` against the real API server and a mocked GitHub: up → push → down → gc,
//! with the pull-request comment and the transient Deployment's statuses seen by the mock;
//! a namespace that is not a preview's is never touched.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use std::process::Output;
use support::{IMAGE_V1, IMAGE_V2, TestEnv, live_image, pinned};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "ghs_PreviewToken_5c0ffee5c0ffee5c0ffee5c0ffee5c0f";
const SHA: &str = "7e57ab1e7e57ab1e7e57ab1e7e57ab1e7e57ab1e";
const REPO: &str = "/repos/world-address/wactl";

/// Deletes the preview namespaces a test made, also when an assertion failed.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for namespace in &self.0 {
            let _ = std::process::Command::new("kubectl")
                .args(["--kubeconfig", &support::kubeconfig()])
                .args([
                    "delete",
                    "namespace",
                    namespace,
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .output();
        }
    }
}

fn wactl(t: &TestEnv, server: &MockServer, args: &[&str]) -> Output {
    t.command(args)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_API_URL", server.uri())
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "world-address/wactl")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_RUN_ID", "778")
        .env("GITHUB_STEP_SUMMARY", t.dir.path().join("summary.md"))
        .env("GITHUB_OUTPUT", t.dir.path().join("output.txt"))
        .output()
        .expect("run wactl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn github() -> MockServer {
    let server = MockServer::start().await;
    let ok = |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
    for (verb, route, status, body) in [
        (
            "POST",
            format!("{REPO}/deployments"),
            201,
            json!({ "id": 42 }),
        ),
        (
            "POST",
            format!("{REPO}/deployments/42/statuses"),
            201,
            json!({ "id": 1 }),
        ),
        (
            "POST",
            format!("{REPO}/deployments/43/statuses"),
            201,
            json!({ "id": 2 }),
        ),
        (
            "GET",
            format!("{REPO}/pulls/7"),
            200,
            json!({ "state": "open" }),
        ),
        (
            "GET",
            format!("{REPO}/pulls/8"),
            200,
            json!({ "state": "open" }),
        ),
        (
            "GET",
            format!("{REPO}/pulls/10"),
            200,
            json!({ "state": "closed" }),
        ),
    ] {
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(ok(status, body))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/deployments")))
        .and(query_param("environment", "t-pr-7"))
        .respond_with(ok(200, json!([{ "id": 42 }, { "id": 43 }])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/deployments")))
        .respond_with(ok(200, json!([])))
        .mount(&server)
        .await;
    for pr in [7, 8, 9, 10] {
        Mock::given(method("GET"))
            .and(path(format!("{REPO}/issues/{pr}/comments")))
            .respond_with(ok(200, json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("{REPO}/issues/{pr}/comments")))
            .respond_with(ok(201, json!({ "id": 900 + pr })))
            .mount(&server)
            .await;
    }
    server
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

fn bodies(requests: &[Request], verb: &str, route: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == route)
        .map(|r| serde_json::from_slice(&r.body).expect("JSON body"))
        .collect()
}

async fn labels(
    api: &Api<Namespace>,
    name: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    api.get_opt(name)
        .await
        .expect("read namespace")
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .map(|n| n.metadata.labels.unwrap_or_default())
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn previews_go_up_come_down_expire_and_never_touch_other_namespaces() {
    let t = TestEnv::extending(
        "t-prev",
        "base",
        "image:\n  registry: 127.0.0.1:5000\n  tag: dev\nreplicas: 1\ngithub:\n  environment: t\n  deployments: true\npreviews: true\n",
    );
    // `t` alone says `previews: true` here, so up, down and gc without --from act on it.
    let staging = t.dir.path().join("staging.yaml");
    let own = std::fs::read_to_string(&staging).expect("staging.yaml");
    assert!(
        own.contains("\npreviews: true\n"),
        "staging copies previews"
    );
    std::fs::write(&staging, own.replace("\npreviews: true\n", "\n")).expect("write staging");
    let env = t.load();
    let client = support::client(&env).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let name = |pr: u64| format!("{}-pr-{pr}", t.namespace);
    let _cleanup = Namespaces([7, 8, 9, 10].map(name).to_vec());
    let server = github().await;

    // Up: its own namespace, labelled and with an expiry; a transient Deployment; a comment.
    let out = wactl(
        &t,
        &server,
        &[
            "preview",
            "up",
            "7",
            "--from",
            "t",
            "--skip-build",
            "--image",
            IMAGE_V1,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("is up in namespace {}", name(7))),
        "{}",
        text(&out)
    );
    let found = labels(&namespaces, &name(7))
        .await
        .expect("the preview namespace");
    assert_eq!(
        found.get("wactl.dev/preview").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        found.get("wactl.dev/pull-request").map(String::as_str),
        Some("7")
    );
    let live = namespaces.get(&name(7)).await.expect("namespace");
    let expires = live.metadata.annotations.unwrap_or_default()["wactl.dev/expires-at"].clone();
    let expires: k8s_openapi::jiff::Timestamp = expires.parse().expect("an RFC 3339 expiry");
    let hours = (expires.as_second() - k8s_openapi::jiff::Timestamp::now().as_second()) / 3600;
    assert!((71..=72).contains(&hours), "default ttl 72h: {hours}h left");
    assert_eq!(live_image(&client, &name(7)).await, pinned(IMAGE_V1));
    let requests = received(&server).await;
    let created = bodies(&requests, "POST", &format!("{REPO}/deployments"));
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["environment"], "t-pr-7");
    assert_eq!(created[0]["transient_environment"], true);
    assert_eq!(created[0]["ref"], SHA);
    let states: Vec<Value> = bodies(
        &requests,
        "POST",
        &format!("{REPO}/deployments/42/statuses"),
    )
    .iter()
    .map(|b| b["state"].clone())
    .collect();
    assert_eq!(states, [json!("in_progress"), json!("success")]);
    let comments = bodies(&requests, "POST", &format!("{REPO}/issues/7/comments"));
    assert_eq!(comments.len(), 1);
    let comment = comments[0]["body"].as_str().expect("body");
    assert!(
        comment.contains("<!-- wactl:preview:t-pr-7 -->"),
        "{comment}"
    );
    assert!(
        comment.contains("State: **up**") && comment.contains("Expires"),
        "{comment}"
    );
    // Inside Actions the preview's deploy writes the step summary, as a deploy does.
    let summary = std::fs::read_to_string(t.dir.path().join("summary.md")).expect("a summary");
    assert!(summary.contains("## wactl deploy `t-pr-7`"), "{summary}");

    // A push: the same preview, redeployed.
    let out = wactl(
        &t,
        &server,
        &[
            "preview",
            "up",
            "7",
            "--from",
            "t",
            "--skip-build",
            "--image",
            IMAGE_V2,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(live_image(&client, &name(7)).await, pinned(IMAGE_V2));

    // A namespace named like a preview that is not one: neither up nor down touch it.
    let stranger: Namespace = serde_json::from_value(
        json!({ "metadata": { "name": name(9), "labels": { "team": "other" } } }),
    )
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &stranger)
        .await
        .expect("create");
    for verb in [
        vec![
            "preview",
            "up",
            "9",
            "--from",
            "t",
            "--skip-build",
            "--image",
            IMAGE_V1,
        ],
        vec!["preview", "down", "9", "--from", "t"],
    ] {
        let out = wactl(&t, &server, &verb);
        assert_eq!(out.status.code(), Some(2), "{verb:?}: {}", text(&out));
        assert!(
            text(&out).contains("is not wactl's preview"),
            "{}",
            text(&out)
        );
    }

    // Down: the namespace goes, the Deployments go inactive, the comment says so.
    server.reset().await;
    let server = github().await;
    let out = wactl(&t, &server, &["preview", "down", "7", "--from", "t"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        labels(&namespaces, &name(7)).await.is_none(),
        "namespace {} is being deleted",
        name(7)
    );
    let requests = received(&server).await;
    for id in [42, 43] {
        let states = bodies(
            &requests,
            "POST",
            &format!("{REPO}/deployments/{id}/statuses"),
        );
        assert_eq!(states.len(), 1, "deployment {id}: {states:?}");
        assert_eq!(states[0]["state"], "inactive");
    }
    let comments = bodies(&requests, "POST", &format!("{REPO}/issues/7/comments"));
    assert!(
        comments[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("**removed**")),
        "{comments:?}"
    );
    // Twice is fine: there is nothing left to remove.
    let out = wactl(&t, &server, &["preview", "down", "7"]);
    assert!(out.status.success(), "{}", text(&out));

    // gc: one preview expired, one whose pull request is closed, one open and current.
    let up = |pr: &str, ttl: &str| {
        let out = wactl(
            &t,
            &server,
            &[
                "preview",
                "up",
                pr,
                "--skip-build",
                "--image",
                IMAGE_V1,
                "--ttl",
                ttl,
            ],
        );
        assert!(out.status.success(), "up {pr}: {}", text(&out));
    };
    up("8", "1s");
    up("10", "72h");
    let out = wactl(
        &t,
        &server,
        &[
            "preview",
            "up",
            "11",
            "--from",
            "t",
            "--skip-build",
            "--image",
            IMAGE_V1,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let _cleanup_11 = Namespaces(vec![name(11)]);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let out = wactl(&t, &server, &["--output", "json", "preview", "gc"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("gc JSON");
    let removed: Vec<(String, String)> = report["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .map(|r| {
            (
                r["namespace"].as_str().unwrap_or_default().to_owned(),
                r["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(removed.len(), 2, "{report:#}");
    assert!(
        report["removed"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["from"] == "t")),
        "each removal names the environment it copied: {report:#}"
    );
    assert!(
        removed[0].0 == name(8) && removed[0].1.starts_with("expired at"),
        "{removed:?}"
    );
    assert!(
        removed[1].0 == name(10) && removed[1].1 == "pull request 10 is closed",
        "{removed:?}"
    );
    assert_eq!(
        report["previews"], 3,
        "8, 10 and 11 were previews; 9 is not: {report:#}"
    );
    assert!(
        labels(&namespaces, &name(11)).await.is_some(),
        "open and current: kept"
    );
    assert_eq!(
        labels(&namespaces, &name(9))
            .await
            .expect("the other namespace is still there")
            .get("team")
            .map(String::as_str),
        Some("other")
    );
}
