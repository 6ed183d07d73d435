//! Render snapshots for every environment, and the checks of the real consumers of each
//! artifact: nginx, promtool and docker-compose (infrastructure tests).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use wactl::config;
use wactl::render::{self, RenderOptions, Rendered};

const ENVIRONMENTS: [&str; 4] = ["local", "dev", "staging", "production"];

fn rendered(name: &str) -> Rendered {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    let env = config::load(&dir, name).unwrap_or_else(|e| panic!("{e}"));
    render::render(&env, &RenderOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn snapshots() {
    for name in ENVIRONMENTS {
        let all: String = rendered(name)
            .files
            .iter()
            .map(|(path, text)| format!("==> {path} <==\n{text}\n"))
            .collect();
        insta::assert_snapshot!(name, all);
    }
}

/// `staging` made a canary: the stable-only Service its Ingress routes to, and the canary
/// Service and Ingress a 25% step applies beside them (derived from those two, so a change
/// to the Ingress template shows here twice).
#[test]
fn canary_ingress_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    for name in ["base.yaml", "staging.yaml"] {
        std::fs::copy(repo.join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(
        dir.path().join("staging-canary.yaml"),
        "extends: staging\nrollout: { strategy: canary }\n",
    )
    .unwrap();
    let env = config::load(dir.path(), "staging-canary").unwrap_or_else(|e| panic!("{e}"));
    let rendered = render::render(&env, &RenderOptions::default()).unwrap();
    let mut all = String::new();
    let mut shown = 0;
    for path in [
        "k8s/30-service-address-service.yaml",
        "k8s/30-service-address-service-stable.yaml",
        "k8s/63-ingress-address-service.yaml",
    ] {
        let text = rendered
            .files
            .get(path)
            .unwrap_or_else(|| panic!("{path} not rendered"));
        all.push_str(&format!("==> {path} <==\n{text}\n"));
        shown += 1;
    }
    assert_eq!(shown, 3);
    let objects: Vec<wactl::cluster::RecordedObject> = rendered
        .manifests
        .iter()
        .map(|m| wactl::cluster::RecordedObject {
            file: m.file.clone(),
            object: m.object.clone(),
        })
        .collect();
    let step = wactl::deploy::canary::canary_traffic(&env, &objects, 25)
        .expect("a canary Service and Ingress");
    assert_eq!(step.len(), 2);
    for (path, object) in step {
        let yaml = serde_saphyr::to_string(&object).unwrap();
        all.push_str(&format!("==> step 25%: {path} <==\n{yaml}\n"));
    }
    insta::assert_snapshot!("staging-canary", all);
}

#[test]
fn schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/environment.schema.json");
    let current = format!("{}\n", config::json_schema());
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "docs/environment.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test --test render schema_is_current`"
    );
}

#[test]
fn environment_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/environment.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let marker = "<!-- generated below: UPDATE_SCHEMA=1 cargo test --test render -->\n";
    let guide = committed
        .split(marker)
        .next()
        .unwrap_or_default()
        .to_owned();
    let current = format!("{guide}{marker}\n{}", config::reference_markdown());
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.contains(marker),
        "docs/environment.md lost its generated-section marker"
    );
    assert!(
        committed == current,
        "docs/environment.md is stale: run `UPDATE_SCHEMA=1 cargo test --test render`"
    );
}

/// Writes `name`'s artifacts to a temporary directory.
fn written(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    rendered(name).write(&out).unwrap();
    (dir, out)
}

fn run(program: &str, args: &[&str], cwd: &Path) {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed (cargo xtask infra up installs it): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed in {}:\n{}{}",
        cwd.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn promtool_accepts_config_rules_and_rule_tests() {
    for name in ENVIRONMENTS {
        let (_keep, out) = written(name);
        let prometheus = out.join("prometheus");
        run(
            "promtool",
            &["check", "config", "prometheus.yml"],
            &prometheus,
        );
        run("promtool", &["check", "rules", "rules.yml"], &prometheus);
        run(
            "promtool",
            &["test", "rules", "rules.test.yml"],
            &prometheus,
        );
    }
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn nginx_accepts_the_proxy_config() {
    for name in ENVIRONMENTS {
        let (_keep, out) = written(name);
        let nginx = out.join("nginx");
        let conf = std::fs::read_to_string(nginx.join("nginx.conf")).unwrap();
        // `nginx -t` resolves upstream host names; the compose service name only exists
        // inside the stack's network, so the check points the upstream at loopback.
        let checked = conf.replace("server address-service:", "server 127.0.0.1:");
        assert_ne!(checked, conf, "upstream not found in {name}'s nginx.conf");
        std::fs::write(nginx.join("nginx.test.conf"), checked).unwrap();
        if conf.contains("ssl_certificate") {
            std::fs::create_dir_all(nginx.join("tls")).unwrap();
            run(
                "openssl",
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=wactl-test",
                    "-keyout",
                    "tls/tls.key",
                    "-out",
                    "tls/tls.crt",
                ],
                &nginx,
            );
        }
        let conf_path = nginx.join("nginx.test.conf");
        run(
            "nginx",
            &["-t", "-q", "-c", conf_path.to_str().unwrap()],
            &nginx,
        );
    }
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn docker_compose_accepts_the_compose_file() {
    for name in ENVIRONMENTS {
        let (_keep, out) = written(name);
        // `wactl up` generates secrets.env; compose only needs it to exist.
        std::fs::write(out.join("secrets.env"), "").unwrap();
        run(
            "docker-compose",
            &[
                "--file",
                "compose.yaml",
                "--project-name",
                "wactl-render-test",
                "config",
                "--quiet",
            ],
            &out,
        );
    }
}
