//! `wactl deploy` and `wactl diff --comment-pr` as a GitHub Actions step, end to end: the
//! real binary against the control plane of `cargo xtask infra up` (kwok nodes), with
//! GitHub's API mocked over HTTP on 127.0.0.1 and the step summary and outputs in files.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};
use support::{IMAGE_V1, IMAGE_V2, pinned};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "ghs_DeployToken_9b74c9897bac770ffc029102a200c5de";
const SHA: &str = "4f1c2a9e8b7d6c5f4e3d2c1b0a99887766554433";
const REPO: &str = "/repos/world-address/wactl";

/// Environments with one more, `g`, reporting to GitHub and deploying to its own namespace.
struct Step {
    dir: tempfile::TempDir,
    namespace: String,
}

impl Step {
    fn new(test: &str) -> Self {
        support::push_release_images();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(
            root.join("environments/base.yaml"),
            dir.path().join("base.yaml"),
        )
        .expect("copy base.yaml");
        let namespace = format!("wactl-gh-{test}-{}", std::process::id());
        let kubeconfig = std::env::var("KUBECONFIG").expect(
            "KUBECONFIG is not set: run `eval \"$(cargo xtask infra env)\"` after `cargo xtask infra up`",
        );
        std::fs::write(
            dir.path().join("g.yaml"),
            format!(
                "extends: base\ncluster:\n  kubeconfig: {kubeconfig}\n  context: wactl-dev\n  namespace: {namespace}\nreplicas: 2\n\
                 rollout:\n  progressDeadlineSeconds: 60\ngithub:\n  environment: gh-{test}\n  deployments: true\n"
            ),
        )
        .expect("write g.yaml");
        Self { dir, namespace }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs wactl as a step of a workflow run whose API is `server`.
    fn wactl(&self, server: &MockServer, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wactl"))
            .arg("--env-dir")
            .arg(self.dir.path())
            .arg("--no-color")
            .args(args)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_API_URL", server.uri())
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_REPOSITORY", "world-address/wactl")
            .env("GITHUB_SHA", SHA)
            .env("GITHUB_RUN_ID", "777")
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_STEP_SUMMARY", self.file("summary.md"))
            .env("GITHUB_OUTPUT", self.file("output.txt"))
            .env_remove("CI")
            .output()
            .expect("run wactl")
    }

    /// `wactl deploy g --skip-build --image IMAGE` plus `extra` arguments.
    fn deploy(&self, server: &MockServer, image: &str, extra: &[&str]) -> Output {
        let mut args = vec!["deploy", "g", "--skip-build", "--image", image];
        args.extend_from_slice(extra);
        self.wactl(server, &args)
    }

    /// A template override whose pods crash-loop on the kwok nodes.
    fn crash_loop_templates(&self) -> PathBuf {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = self.file("crash-templates");
        std::fs::create_dir_all(dir.join("k8s")).expect("mkdir");
        let template = std::fs::read_to_string(root.join("templates/k8s/deployment.yaml.tera"))
            .expect("deployment template");
        let faulty = template.replacen(
            "      annotations:\n",
            "      annotations:\n        wactl.dev/kwok-fault: crashloop\n",
            1,
        );
        assert_ne!(faulty, template, "the template has no pod annotations");
        std::fs::write(dir.join("k8s/deployment.yaml.tera"), faulty).expect("write");
        dir
    }
}

impl Drop for Step {
    /// Also when an assertion failed: no namespace outlives its test.
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .output();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn github() -> MockServer {
    let server = MockServer::start().await;
    mount_deployments(&server).await;
    server
}

/// GitHub accepts deployment 42 and its statuses.
async fn mount_deployments(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/deployments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 42 })))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/deployments/42/statuses")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .mount(server)
        .await;
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("JSON body")
}

/// The states of the statuses posted to deployment 42, in order.
fn statuses(requests: &[Request]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|r| r.url.path() == format!("{REPO}/deployments/42/statuses"))
        .map(|r| {
            let b = body(r);
            (
                b["state"].as_str().unwrap_or_default().to_owned(),
                b["description"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn assert_no_token(step: &Step, output: &Output, requests: &[Request]) {
    let mut texts = vec![text(&output.stdout), text(&output.stderr)];
    for name in ["summary.md", "output.txt"] {
        texts.push(std::fs::read_to_string(step.file(name)).unwrap_or_default());
    }
    texts.extend(requests.iter().map(|r| text(&r.body)));
    for t in texts {
        assert!(!t.contains(TOKEN), "the token leaked: {t}");
    }
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_deploy_step_reports_its_deployment_summary_and_outputs() {
    let step = Step::new("ok");
    let server = github().await;
    let output = step.deploy(&server, IMAGE_V1, &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");

    let requests = received(&server).await;
    let created: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path() == format!("{REPO}/deployments"))
        .map(body)
        .collect();
    assert_eq!(created.len(), 1, "one GitHub deployment per deploy");
    assert_eq!(created[0]["ref"], SHA);
    assert_eq!(created[0]["environment"], "gh-ok");
    assert_eq!(
        requests[0]
            .headers
            .get("authorization")
            .map(|v| v.as_bytes()),
        Some(format!("Bearer {TOKEN}").as_bytes())
    );
    let states = statuses(&requests);
    assert_eq!(
        states.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["in_progress", "success"],
        "{states:?}"
    );
    assert!(states[1].1.contains("revision 1"), "{states:?}");
    let last = requests.last().map(body).expect("a status");
    assert_eq!(
        last["log_url"],
        "https://github.example/world-address/wactl/actions/runs/777"
    );

    let summary = std::fs::read_to_string(step.file("summary.md")).expect("a step summary");
    assert!(summary.contains("## wactl deploy `g`"), "{summary}");
    assert!(summary.contains(IMAGE_V1), "{summary}");
    assert!(summary.contains("address-service"), "{summary}");
    // The plan and each workload's rollout come from the deploy's events as they happen.
    assert!(summary.contains("### Plan"), "{summary}");
    assert!(
        summary.contains("| `+` | create | Deployment | address-service |"),
        "{summary}"
    );
    assert!(summary.contains("### Rollout"), "{summary}");
    assert!(
        summary
            .lines()
            .any(|l| l.contains("address-service") && l.ends_with("| 2 | 2 | 2 | 2 | complete |")),
        "{summary}"
    );
    let outputs = std::fs::read_to_string(step.file("output.txt")).expect("step outputs");
    for line in [
        "revision=1",
        "outcome=succeeded",
        &format!("image={}", pinned(IMAGE_V1)),
    ] {
        assert!(
            outputs.lines().any(|l| l == line),
            "no `{line}` in {outputs}"
        );
    }
    assert_no_token(&step, &output, &requests);

    // A crash-looping release fails, is rolled back, and GitHub hears why.
    server.reset().await;
    mount_deployments(&server).await;
    let crash = step.crash_loop_templates();
    let crash = crash.to_string_lossy();
    let output = step.deploy(&server, IMAGE_V2, &["--templates", &crash]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let requests = received(&server).await;
    let states = statuses(&requests);
    assert_eq!(
        states.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["in_progress", "failure"],
        "{states:?}"
    );
    assert!(
        states[1].1.to_lowercase().contains("crash"),
        "the failure status names the reason: {states:?}"
    );
    let summary = std::fs::read_to_string(step.file("summary.md")).expect("a step summary");
    assert!(
        summary.contains("rolled back") || summary.contains("Rolled back"),
        "{summary}"
    );
    let outputs = std::fs::read_to_string(step.file("output.txt")).expect("step outputs");
    assert!(
        outputs.lines().any(|l| l == "outcome=rolled_back"),
        "{outputs}"
    );
    assert!(
        stderr.contains("::error"),
        "the failure is an annotation: {stderr}"
    );
    assert_no_token(&step, &output, &requests);
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_diff_step_comments_the_plan_on_the_pull_request() {
    let step = Step::new("diff");
    let server = github().await;
    let output = step.deploy(&server, IMAGE_V1, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/7/comments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 9 })))
        .mount(&server)
        .await;
    let plan_file = step.file("plan-g.json");
    let plan_arg = plan_file.to_str().expect("utf-8 path");
    let output = step.wactl(
        &server,
        &[
            "diff",
            "g",
            "--image",
            IMAGE_V2,
            "--comment-pr",
            "7",
            "--save-plan",
            plan_arg,
        ],
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        stdout.contains(IMAGE_V2),
        "the diff shows the new image: {stdout}"
    );

    let requests = received(&server).await;
    let comments: Vec<Value> = requests
        .iter()
        .filter(|r| {
            r.method.as_str() == "POST" && r.url.path() == format!("{REPO}/issues/7/comments")
        })
        .map(body)
        .collect();
    assert_eq!(comments.len(), 1);
    let comment = comments[0]["body"].as_str().expect("a comment body");
    assert!(comment.contains("<!-- wactl:diff:g -->"), "{comment}");
    assert!(comment.contains("Deployment"), "{comment}");
    assert!(comment.contains("update"), "{comment}");
    // The comment names the saved plan by its hash: what the deploy workflow applies.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).expect("the plan file"))
            .expect("plan JSON");
    let hash = saved["hash"].as_str().expect("a hash");
    assert!(hash.starts_with("sha256:"), "{hash}");
    assert!(
        comment.contains(&format!("Saved plan `{hash}`")),
        "{comment}"
    );
    assert_no_token(&step, &output, &requests);

    // The deploy job applies that plan, and GitHub hears of the deploy as of any other.
    server.reset().await;
    mount_deployments(&server).await;
    let output = step.wactl(&server, &["deploy", "g", "--plan", plan_arg]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(hash),
        "the deploy names the plan it applies: {stderr}"
    );
    let requests = received(&server).await;
    let states = statuses(&requests);
    assert_eq!(
        states.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["in_progress", "success"],
        "{states:?}"
    );
    let outputs = std::fs::read_to_string(step.file("output.txt")).expect("step outputs");
    assert!(
        outputs
            .lines()
            .any(|l| l == format!("image={}", pinned(IMAGE_V2))),
        "{outputs}"
    );
    assert_no_token(&step, &output, &requests);
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn an_unchanged_deploy_still_marks_its_commit_deployed() {
    let step = Step::new("same");
    let server = github().await;
    let output = step.deploy(&server, IMAGE_V1, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    server.reset().await;
    mount_deployments(&server).await;
    let output = step.deploy(&server, IMAGE_V1, &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let outputs = std::fs::read_to_string(step.file("output.txt")).expect("step outputs");
    assert!(
        outputs.lines().any(|l| l == "outcome=unchanged"),
        "nothing was applied: {outputs}"
    );
    let requests = received(&server).await;
    let created: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path() == format!("{REPO}/deployments"))
        .map(body)
        .collect();
    assert_eq!(created.len(), 1, "a Deployment for the commit: {created:?}");
    assert_eq!(created[0]["ref"], SHA);
    let states = statuses(&requests);
    assert_eq!(
        states.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["in_progress", "success"],
        "{states:?}"
    );
    assert!(
        states[1].1.contains("nothing to change") && states[1].1.contains("revision 1"),
        "{states:?}"
    );
    assert_no_token(&step, &output, &requests);
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn required_github_that_refuses_stops_the_deploy_before_the_cluster() {
    let step = Step::new("req");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/deployments")))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({ "message": "Resource not accessible by integration" })),
        )
        .mount(&server)
        .await;
    let output = step.deploy(&server, IMAGE_V1, &["--require-github"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("creating the GitHub deployment failed")
            && stderr.contains("Resource not accessible by integration"),
        "{stderr}"
    );
    // Nothing reached the cluster: the namespace was never created.
    let namespace = Command::new("kubectl")
        .args(["get", "namespace", &step.namespace])
        .output()
        .expect("kubectl");
    assert!(
        !namespace.status.success(),
        "the deploy went ahead without GitHub"
    );

    // Without --require-github the same refusal is a warning and the deploy goes on.
    let output = step.deploy(&server, IMAGE_V1, &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("::warning"), "{stderr}");
}

/// Removes a namespace from the second cluster (`infra up --second-cluster`) on drop.
struct SecondNamespace(String);

impl Drop for SecondNamespace {
    fn drop(&mut self) {
        let kubeconfig = std::env::var("WACTL_KUBECONFIG_2").unwrap_or_default();
        let _ = Command::new("kubectl")
            .args([
                "--kubeconfig",
                &kubeconfig,
                "delete",
                "namespace",
                &self.0,
                "--wait=false",
            ])
            .output();
    }
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_deploy_to_two_clusters_makes_a_deployment_and_a_summary_row_each() {
    let step = Step::new("fleet");
    let context_2 = std::env::var("WACTL_CONTEXT_2").unwrap_or_else(|_| "wactl-dev-2".into());
    let _second = SecondNamespace(step.namespace.clone());
    let definition = std::fs::read_to_string(step.file("g.yaml")).expect("g.yaml");
    std::fs::write(
        step.file("g.yaml"),
        format!(
            "{definition}clusters:\n  - {{ name: eu-1, context: wactl-dev }}\n  - {{ name: eu-2, context: {context_2}, wave: 2 }}\n"
        ),
    )
    .expect("write g.yaml");
    let server = github().await;
    let output = step.deploy(&server, IMAGE_V1, &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let requests = received(&server).await;
    let environments: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path() == format!("{REPO}/deployments"))
        .map(|r| {
            body(r)["environment"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(environments, ["gh-fleet/eu-1", "gh-fleet/eu-2"]);
    let states = statuses(&requests);
    assert_eq!(
        states.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["in_progress", "in_progress", "success", "success"],
        "{states:?}"
    );
    let summary = std::fs::read_to_string(step.file("summary.md")).expect("a step summary");
    assert!(
        summary.contains("## wactl deploy `g`: succeeded in 2 clusters"),
        "{summary}"
    );
    assert!(
        summary.contains("| eu-1 | 1 | succeeded | 1 | - |"),
        "{summary}"
    );
    assert!(
        summary.contains("| eu-2 | 2 | succeeded | 1 | - |"),
        "{summary}"
    );
    let outputs = std::fs::read_to_string(step.file("output.txt")).expect("step outputs");
    assert!(
        outputs.lines().any(|l| l == "outcome=succeeded"),
        "{outputs}"
    );
    assert!(
        outputs
            .lines()
            .any(|l| l.starts_with("clusters=[{\"name\":\"eu-1\"")),
        "{outputs}"
    );
    assert!(
        stderr.contains("[eu-1] ") && stderr.contains("[eu-2] "),
        "{stderr}"
    );
    assert_no_token(&step, &output, &requests);
}
