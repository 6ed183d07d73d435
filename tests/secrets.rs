//! Secret values never reach an output channel. Each test plants known values where a secret
//! lives (the process environment, a file next to the templates, the local stack's
//! `secrets.env`, a Kubernetes Secret, the GitHub token) and searches every channel wactl
//! writes to for them: rendered files, stdout and stderr, diffs, JSON reports, the GitHub
//! API (a local mock on 127.0.0.1), the Actions job summary and outputs.

mod support;

use base64::Engine as _;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};
use support::root;
use wactl::cluster::{Change, ObjectRef, diff};

/// Planted in every secret; never legitimately part of any output.
const CANARY: &str = "cAnArY-5d41402abc4b2a76-sEcReT";
const TOKEN: &str = "ghs_cAnArYtoken9f86d081884c7d659a2f";

/// The canary as it could appear: plain, base64 (Secret `data`), and its distinctive middle.
fn needles() -> Vec<String> {
    vec![
        CANARY.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(CANARY),
        "5d41402abc4b2a76".to_owned(),
        TOKEN.to_owned(),
        "cAnArYtoken".to_owned(),
    ]
}

fn assert_clean(channel: &str, text: &str) {
    for needle in needles() {
        assert!(
            !text.contains(&needle),
            "secret value `{needle}` in {channel}:\n{text}"
        );
    }
}

/// Every file under `dir`, checked.
fn assert_tree_clean(dir: &Path) -> usize {
    let mut files = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                assert_clean(
                    &path.display().to_string(),
                    &String::from_utf8_lossy(&bytes),
                );
                files += 1;
            }
        }
    }
    files
}

/// The variables a secret could arrive in, all set to values holding the canary.
fn secret_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "DATABASE_URL",
            format!("postgres://address:{CANARY}@db:5432/address"),
        ),
        ("REDIS_URL", format!("redis://:{CANARY}@redis:6379")),
        ("POSTGRES_PASSWORD", CANARY.to_owned()),
        ("GF_SECURITY_ADMIN_PASSWORD", CANARY.to_owned()),
        ("WACTL_AUTH_REGISTRY_PASSWORD", CANARY.to_owned()),
        ("GITHUB_TOKEN", TOKEN.to_owned()),
    ]
}

const PINNED_IMAGE: &str = "ghcr.io/world-address/address-service@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn wactl(env_dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wactl"));
    command
        .arg("--env-dir")
        .arg(env_dir)
        .args(["--no-color"])
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("CI");
    for (key, value) in secret_env() {
        command.env(key, value);
    }
    command.output().expect("run wactl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_output_clean(what: &str, out: &Output) {
    assert_clean(&format!("{what}: stdout"), &text(&out.stdout));
    assert_clean(&format!("{what}: stderr"), &text(&out.stderr));
}

#[test]
fn validate_render_and_schema_ignore_secret_values_in_the_environment() {
    let envs = root().join("environments");
    let out_root = tempfile::tempdir().expect("tempdir");
    let validate = wactl(&envs, &["validate"]);
    assert!(validate.status.success(), "{}", text(&validate.stderr));
    assert_output_clean("wactl validate", &validate);
    let schema = wactl(&envs, &["schema"]);
    assert_output_clean("wactl schema", &schema);

    let mut files = 0;
    for env in ["local", "dev", "staging", "production"] {
        let dir = out_root.path().join(env);
        let dir_arg = dir.to_str().expect("utf-8");
        for output in ["text", "json"] {
            let mut args = vec!["--output", output, "render", env, "--out", dir_arg];
            // A protected environment renders only an image named exactly.
            if env == "production" {
                args.extend(["--image", PINNED_IMAGE]);
            }
            let out = wactl(&envs, &args);
            assert!(
                out.status.success(),
                "wactl render {env}: {}",
                text(&out.stderr)
            );
            assert_output_clean(&format!("wactl render {env} --output {output}"), &out);
        }
        files += assert_tree_clean(&dir);
    }
    assert!(files > 40, "rendered files were checked ({files})");
    // The secret reaches the workload by reference only.
    let deployment = std::fs::read_dir(out_root.path().join("staging/k8s"))
        .expect("k8s dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().contains("deployment-address-service"))
        .expect("a Deployment was rendered");
    let deployment = std::fs::read_to_string(deployment).expect("read");
    assert!(
        deployment.contains("secretKeyRef") && deployment.contains("address-service-postgres"),
        "{deployment}"
    );
}

#[test]
fn a_template_cannot_read_secret_values_from_the_environment_or_from_files() {
    let envs = root().join("environments");
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("secret.txt"), CANARY).expect("write secret file");
    let attempts = [
        ("get_env", r#"{{ get_env(name="DATABASE_URL") }}"#),
        (
            "get_env-default",
            r#"{{ get_env(name="POSTGRES_PASSWORD", default="none") }}"#,
        ),
        ("include-relative", r#"{% include "../secret.txt" %}"#),
        (
            "include-absolute",
            &format!(
                r#"{{% include "{}" %}}"#,
                work.path().join("secret.txt").display()
            ),
        ),
        (
            "import",
            &format!(
                r#"{{% import "{}" as s %}}"#,
                work.path().join("secret.txt").display()
            ),
        ),
    ];
    for (name, template) in attempts {
        let overrides = work.path().join(name);
        std::fs::create_dir_all(overrides.join("k8s")).expect("mkdir");
        std::fs::write(overrides.join("k8s/configmap.yaml.tera"), template).expect("write");
        let out_dir = work.path().join(format!("out-{name}"));
        let out = wactl(
            &envs,
            &[
                "render",
                "staging",
                "--templates",
                overrides.to_str().expect("utf-8"),
                "--out",
                out_dir.to_str().expect("utf-8"),
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: a template reading outside its context is invalid input: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("k8s/configmap.yaml.tera"),
            "{name}: the error names the template: {}",
            text(&out.stderr)
        );
        assert_output_clean(&format!("render with override {name}"), &out);
        assert!(!out_dir.exists(), "{name}: nothing rendered");
    }

    // A symbolic link to the secret is refused as an override.
    let linked = work.path().join("symlink");
    std::fs::create_dir_all(linked.join("k8s")).expect("mkdir");
    std::os::unix::fs::symlink(
        work.path().join("secret.txt"),
        linked.join("k8s/configmap.yaml.tera"),
    )
    .expect("symlink");
    let out = wactl(
        &envs,
        &[
            "render",
            "staging",
            "--templates",
            linked.to_str().expect("utf-8"),
            "--out",
            work.path().join("out-symlink").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert_output_clean("render with a symlinked override", &out);
}

#[test]
fn local_stack_secrets_stay_in_secrets_env() {
    let env = wactl::config::load(&root().join("environments"), "local").expect("local loads");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(wactl::local::secrets::FILE);
    wactl::local::secrets::ensure(&path, &env).expect("secrets.env generated");
    let values: Vec<String> = wactl::local::secrets::read(&path)
        .expect("read secrets.env")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert!(values.len() >= 2, "{values:?}");
    let rendered =
        wactl::render::render(&env, &wactl::render::RenderOptions::default()).expect("render");
    for (file, content) in &rendered.files {
        for value in &values {
            assert!(
                !content.contains(value.as_str()),
                "a secrets.env value is in {file}"
            );
        }
    }
    let compose = &rendered.files["compose.yaml"];
    assert!(
        compose.contains(wactl::local::secrets::FILE),
        "compose.yaml reads the secrets from the env file:\n{compose}"
    );
}

fn secret(data: serde_json::Value, last_applied: Option<String>) -> serde_json::Value {
    let mut metadata = json!({ "name": "address-service-postgres", "namespace": "t" });
    if let Some(annotation) = last_applied {
        metadata["annotations"] =
            json!({ "kubectl.kubernetes.io/last-applied-configuration": annotation });
    }
    json!({ "apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque", "data": data })
}

#[test]
fn diffs_and_plans_redact_secret_values_everywhere_they_hide() {
    let object = || ObjectRef {
        api_version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some("t".into()),
        name: "address-service-postgres".into(),
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(CANARY);
    // `kubectl apply` keeps the whole object, values included, in an annotation.
    let applied = json!({ "apiVersion": "v1", "kind": "Secret", "stringData": { "url": CANARY } })
        .to_string();
    let live = secret(json!({ "url": encoded }), Some(applied));
    let desired = secret(json!({ "url": "b3RoZXI=" }), None);
    let cases = [
        ("update", Some(&live), Some(&desired)),
        ("delete", Some(&live), None),
        ("create", None, Some(&live)),
    ];
    for (name, before, after) in cases {
        let planned = diff::compare(object(), before, after);
        assert_ne!(planned.change, Change::Unchanged, "{name}");
        assert!(!planned.diff.is_empty(), "{name}: a diff was produced");
        assert_clean(&format!("{name} diff"), &planned.diff);
        assert_clean(
            &format!("{name} plan as JSON"),
            &serde_json::to_string(&planned).expect("serialize"),
        );
    }
    let planned = diff::compare(object(), Some(&live), Some(&desired));
    assert!(
        planned.diff.contains("(redacted, changed)"),
        "that a value changed stays visible:\n{}",
        planned.diff
    );
}

/// The cluster half: a real Secret with the canary in the test namespace, read by the
/// workload through `secretKeyRef`; `diff`, `deploy --output json`, `status` and `history`
/// run inside GitHub Actions (`GITHUB_ACTIONS=true`) against a local GitHub mock.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn cluster_commands_and_github_reports_never_show_secret_values() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::PostParams;
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let t = support::TestEnv::extending(
        "t-secrets",
        "base",
        "image:\n  registry: 127.0.0.1:5000\n  tag: dev\nreplicas: 1\nsecrets:\n  DATABASE_URL: { secret: address-service-postgres, key: url }\n  REDIS_URL: { secret: address-service-redis, key: url }\ngithub:\n  environment: t\n  deployments: true\n",
    );
    let namespace = t.namespace.clone();
    let envs = &t.dir;
    let env = t.load();
    let client = support::client(&env).await;

    // The Secrets exist before the first deploy, as an operator would create them.
    t.create_namespace(&client).await;
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), &namespace);
    for (name, value) in [
        (
            "address-service-postgres",
            format!("postgres://address:{CANARY}@postgres:5432/address"),
        ),
        (
            "address-service-redis",
            format!("redis://:{CANARY}@redis:6379"),
        ),
    ] {
        let applied =
            json!({ "apiVersion": "v1", "kind": "Secret", "stringData": { "url": value } });
        let s: Secret = serde_json::from_value(json!({
            "metadata": { "name": name, "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": applied.to_string() } },
            "stringData": { "url": value },
        }))
        .expect("secret");
        secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("create secret");
    }

    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(r"/comments$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 7 })))
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 7 })))
        .mount(&github)
        .await;
    let actions = tempfile::tempdir().expect("tempdir");
    let summary = actions.path().join("summary.md");
    let outputs = actions.path().join("outputs");
    std::fs::write(&summary, "").expect("summary file");
    std::fs::write(&outputs, "").expect("outputs file");

    let command_for = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wactl"));
        command
            .arg("--env-dir")
            .arg(envs.path())
            .arg("--no-color")
            .args(args)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_API_URL", github.uri())
            .env("GITHUB_REPOSITORY", "world-address/wactl")
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_RUN_ID", "77")
            .env("GITHUB_SHA", "0123abcd")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .env_remove("CI");
        for (key, value) in secret_env() {
            if key != "GITHUB_TOKEN" {
                command.env(key, value);
            }
        }
        command
    };
    let image = support::IMAGE_V1;
    support::push(image);
    let steps: Vec<Vec<&str>> = vec![
        vec!["diff", "t", "--comment-pr", "8"],
        vec!["--output", "json", "diff", "t"],
        vec![
            "--output",
            "json",
            "--yes",
            "deploy",
            "t",
            "--skip-build",
            "--image",
            image,
            "--timeout",
            "90s",
        ],
        vec!["status", "t"],
        vec!["--output", "json", "status", "t"],
        vec!["history", "t"],
        vec!["--output", "json", "history", "t"],
        vec!["diff", "t"],
    ];
    let mut deployed = false;
    for step in steps {
        let mut command = command_for(&step);
        // The GitHub mock answers on this runtime while wactl runs.
        let out = tokio::task::spawn_blocking(move || command.output().expect("run wactl"))
            .await
            .expect("join");
        let args = step;
        let what = format!("wactl {}", args.join(" "));
        assert_output_clean(&what, &out);
        if args.contains(&"deploy") {
            assert!(
                out.status.success(),
                "{what}: {}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
            deployed = true;
        }
    }
    assert!(deployed);
    let bodies: Vec<String> = github
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .map(|r| {
            let headers: Vec<String> = r
                .headers
                .iter()
                .filter(|(name, _)| name.as_str() != "authorization")
                .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("?")))
                .collect();
            format!(
                "{} {}\n{}\n{}",
                r.method,
                r.url,
                headers.join("\n"),
                String::from_utf8_lossy(&r.body)
            )
        })
        .collect();
    assert!(
        bodies.len() >= 3,
        "wactl reported to GitHub (deployment, statuses, comment): {bodies:?}"
    );
    for body in &bodies {
        assert_clean("a GitHub API request", body);
    }
    let summary = std::fs::read_to_string(&summary).expect("summary");
    assert!(!summary.is_empty(), "a job summary was written");
    assert_clean("the job summary", &summary);
    assert_clean(
        "the job outputs",
        &std::fs::read_to_string(&outputs).expect("outputs"),
    );
}
