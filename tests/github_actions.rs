//! wactl inside GitHub Actions (`GITHUB_ACTIONS=true`): annotations from the real binary,
//! the step summary and outputs in temp files, and a known token that never shows anywhere.

use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use wactl::github::{
    Actions, DeploySummary, ObjectAction, Outcome, PlannedObject, Reporter, RolloutRow, Settings,
    SmokeRow, StageTiming, State,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghs_KnownToken_5f4dcc3b5aa765d61d8327deb882cf99";
/// Set by the parent test: the child scenario runs only in a child process.
const CHILD_DIR: &str = "WACTL_GITHUB_CHILD_DIR";

fn wactl(env_dir: &Path, args: &[&str], actions: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wactl"));
    command
        .arg("--env-dir")
        .arg(env_dir)
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("NO_COLOR")
        .env("GITHUB_TOKEN", TOKEN);
    if actions {
        command.env("GITHUB_ACTIONS", "true");
    }
    command.output().expect("run wactl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A definition with a wrong type on line 2, column 11.
fn broken_env_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments/base.yaml");
    std::fs::copy(base, dir.path().join("base.yaml")).expect("copy base");
    std::fs::write(
        dir.path().join("broken.yaml"),
        "extends: base\nreplicas: three\n",
    )
    .expect("write");
    dir
}

#[test]
fn config_errors_become_annotations_with_file_line_and_column() {
    let dir = broken_env_dir();
    let output = wactl(dir.path(), &["validate", "broken"], true);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    let file = dir.path().join("broken.yaml");
    let expected = format!("::error file={},line=2,col=11::", file.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        !text(&output.stdout).contains("::error"),
        "stdout stays for results"
    );
    assert!(!stderr.contains('\x1b'), "no colour in Actions: {stderr:?}");
    assert!(!stderr.contains(TOKEN) && !text(&output.stdout).contains(TOKEN));
}

#[test]
fn annotations_keep_json_output_parseable() {
    let dir = broken_env_dir();
    let output = wactl(
        dir.path(),
        &["--output", "json", "validate", "broken"],
        true,
    );
    assert_eq!(output.status.code(), Some(2));
    let stdout = text(&output.stdout);
    let documents: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is only JSON ({e}): {stdout}"));
    assert!(
        documents.iter().any(|d| d.get("error").is_some()),
        "{stdout}"
    );
    assert!(text(&output.stderr).contains("::error file="));
}

#[test]
fn outside_actions_there_are_no_annotations() {
    let dir = broken_env_dir();
    let output = wactl(dir.path(), &["validate", "broken"], false);
    assert_eq!(output.status.code(), Some(2));
    assert!(!text(&output.stderr).contains("::error"));
    assert!(!text(&output.stdout).contains("::error"));
}

fn example_summary() -> DeploySummary {
    DeploySummary {
        image: Some("ghcr.io/world-address/address-service:0123abcd".into()),
        digest: Some(
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        ),
        revision: Some(12),
        url: Some("https://address.staging.world-address.example".into()),
        stages: vec![StageTiming {
            name: "apply".into(),
            duration: Duration::from_millis(1500),
            ok: true,
        }],
        objects: vec![PlannedObject {
            kind: "Deployment".into(),
            name: "address-service".into(),
            namespace: Some("world-address-staging".into()),
            action: ObjectAction::Update,
        }],
        rollout: vec![RolloutRow {
            workload: "Deployment/address-service".into(),
            desired: 2,
            updated: 2,
            ready: 2,
            available: 2,
            status: "complete".into(),
        }],
        smoke: vec![SmokeRow {
            name: "validate-de".into(),
            request: "POST /v1/addresses/validate".into(),
            status: Some(200),
            latency: Duration::from_millis(31),
            passed: true,
            detail: None,
        }],
        ..DeploySummary::new("staging", Outcome::Succeeded)
    }
}

/// The child half: runs in a process whose environment the parent set up (Actions
/// variables, temp files, the known token), against a mock that echoes the token back.
#[tokio::test]
async fn child_reports_from_inside_actions() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/world-address/wactl/deployments"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": format!("Bad credentials (Authorization: Bearer {TOKEN})"),
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/world-address/wactl/issues/8/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/world-address/wactl/issues/8/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .mount(&server)
        .await;

    let env = wactl::config::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("environments"),
        "staging",
    )
    .expect("staging loads");
    let mut settings = Settings::from_env(&env);
    assert!(settings.actions && settings.token.is_some());
    settings.api_url = server.uri();
    println!("settings: {settings:?}");
    let github = Reporter::new(&env, settings, false).expect("reporter");
    println!("reporter: {github:?}");
    let handle = github
        .start_deployment(
            "0123abcd",
            Some("https://address.staging.world-address.example"),
        )
        .await
        .expect("a warning only");
    github
        .status(&handle, State::Success, "done")
        .await
        .expect("a warning only");
    let summary = example_summary();
    github
        .upsert_pr_comment(8, &summary.to_markdown())
        .await
        .expect("comment");

    let actions = Actions::from_env().expect("GITHUB_ACTIONS=true");
    actions.summary(&summary).expect("summary");
    actions.deploy_outputs(&summary).expect("outputs");
    actions
        .outputs(&[("plan", "1 to update\n0 to create")])
        .expect("multi-line output");
    actions.annotate_error(&anyhow::anyhow!("deploy failed").context("wactl deploy staging"));
    println!("warnings: {:?}", github.warnings());

    let bodies: Vec<String> = server
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    std::fs::write(dir.join("requests.txt"), bodies.join("\n")).expect("write requests");
}

#[test]
fn summary_outputs_and_comments_never_show_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("step_summary.md");
    let outputs = dir.path().join("github_output");
    std::fs::write(&summary, "").expect("create summary");
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_reports_from_inside_actions",
            "--nocapture",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "world-address/wactl")
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_RUN_ID", "77")
        .env("GITHUB_SHA", "0123abcd")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .output()
        .expect("run the child");
    let stdout = text(&child.stdout);
    let stderr = text(&child.stderr);
    assert!(child.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child scenario ran: {stdout}"
    );

    let summary = std::fs::read_to_string(&summary).expect("summary written");
    let outputs = std::fs::read_to_string(&outputs).expect("outputs written");
    let requests = std::fs::read_to_string(dir.path().join("requests.txt")).expect("requests");
    for (name, content) in [
        ("stdout", &stdout),
        ("stderr", &stderr),
        ("summary", &summary),
        ("outputs", &outputs),
        ("request bodies", &requests),
    ] {
        assert!(!content.contains(TOKEN), "token in {name}:\n{content}");
        assert!(
            !content.contains("KnownToken"),
            "token in {name}:\n{content}"
        );
    }

    // The 401 became a warning, on stderr and as an annotation.
    assert!(
        stderr.contains("warning: creating the GitHub deployment failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("::warning::creating the GitHub deployment failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Bearer ***"),
        "the echoed token was scrubbed: {stderr}"
    );
    assert!(
        stderr.contains("::error::wactl deploy staging: deploy failed"),
        "{stderr}"
    );

    assert!(
        summary.starts_with("## wactl deploy `staging`: ✅ deployed"),
        "{summary}"
    );
    assert!(summary.contains("| digest | `sha256:9f86d08"));
    assert!(summary.contains("| Deployment/address-service | 2 | 2 | 2 | 2 | complete |"));
    assert!(summary.contains("### Smoke tests: 1/1 passed"));

    let mut lines = outputs.lines();
    assert_eq!(
        lines.next(),
        Some("image=ghcr.io/world-address/address-service:0123abcd")
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("digest=sha256:"))
    );
    assert_eq!(lines.next(), Some("revision=12"));
    assert_eq!(
        lines.next(),
        Some("url=https://address.staging.world-address.example")
    );
    assert_eq!(lines.next(), Some("outcome=succeeded"));
    let heredoc = lines.next().expect("plan output");
    let delimiter = heredoc.strip_prefix("plan<<").expect("heredoc form");
    assert_eq!(lines.next(), Some("1 to update"));
    assert_eq!(lines.next(), Some("0 to create"));
    assert_eq!(lines.next(), Some(delimiter));

    assert!(
        requests.contains("<!-- wactl:diff:staging -->"),
        "{requests}"
    );
}
