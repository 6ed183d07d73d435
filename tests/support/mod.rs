//! Shared set-up for the infrastructure tests: a copy of the environments with one more,
//! `t`, deploying to a namespace of its own; the client; deploy options; and clean-up on
//! `Drop`, so that a failed assertion leaves no namespace (or volume) behind and every run
//! starts from nothing.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;
use wactl::cluster::{self, Access};
use wactl::config::Environment;
use wactl::deploy::DeployOptions;

pub const IMAGE_V1: &str = "127.0.0.1:5000/world-address/address-service:v1";
pub const IMAGE_V2: &str = "127.0.0.1:5000/world-address/address-service:v2";
pub const IMAGE_V3: &str = "127.0.0.1:5000/world-address/address-service:v3";

/// The tags the tests deploy with `--image`. wactl refuses a tag the registry does not have,
/// so every [`TestEnv`] makes sure the local registry has them (see [`push`]).
pub const RELEASE_IMAGES: [&str; 3] = [IMAGE_V1, IMAGE_V2, IMAGE_V3];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn kubeconfig() -> String {
    std::env::var("KUBECONFIG")
        .expect("KUBECONFIG is not set: run `eval \"$(cargo xtask infra env)\"` after `cargo xtask infra up`")
}

/// A copy of the environments with one more, `t`, deploying to a namespace of its own.
/// Dropping it destroys `t`, deletes the namespace and the volumes made for it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub namespace: String,
    /// `t.yaml` up to the caller's additions: parent, cluster and definition.
    header: String,
    /// PersistentVolumes made for the namespace (cluster-wide: the namespace does not take them).
    volumes: Mutex<Vec<String>>,
}

impl TestEnv {
    /// `t` extends `base` with the local registry, 2 replicas and `extra_yaml`, in the
    /// namespace `wactl-<prefix>-<pid>` (`prefix` names the suite and the test).
    pub fn new(prefix: &str, extra_yaml: &str) -> Self {
        Self::with_registry(prefix, "127.0.0.1:5000", extra_yaml)
    }

    /// As [`TestEnv::new`], pushing to `registry`.
    pub fn with_registry(prefix: &str, registry: &str, extra_yaml: &str) -> Self {
        let defaults = format!(
            "image:\n  registry: {registry}\n  tag: dev\nreplicas: 2\ngithub:\n  environment: t\n  deployments: false\n"
        );
        let env = Self::extending(prefix, "base", &defaults);
        env.write(extra_yaml);
        env
    }

    /// `t` extends `parent` (one of the repository's environments) with `definition`, in the
    /// namespace `wactl-<prefix>-<pid>`. [`TestEnv::write`] keeps `definition`.
    pub fn extending(prefix: &str, parent: &str, definition: &str) -> Self {
        push_release_images();
        let dir = tempfile::tempdir().expect("temp dir");
        for entry in std::fs::read_dir(root().join("environments")).expect("environments") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, dir.path().join(path.file_name().expect("name")))
                    .expect("copy");
            }
        }
        let namespace = format!("wactl-{prefix}-{}", std::process::id());
        let header = format!(
            "extends: {parent}\ncluster:\n  kubeconfig: {}\n  context: wactl-dev\n  namespace: {namespace}\n{definition}",
            kubeconfig()
        );
        let env = Self {
            dir,
            namespace,
            header,
            volumes: Mutex::new(Vec::new()),
        };
        env.write("");
        env
    }

    /// (Re)writes `t.yaml`: the parent, namespace and definition, plus `extra_yaml`.
    pub fn write(&self, extra_yaml: &str) {
        std::fs::write(
            self.dir.path().join("t.yaml"),
            format!("{}{extra_yaml}", self.header),
        )
        .expect("write t.yaml");
    }

    pub fn load(&self) -> Environment {
        wactl::config::load(self.dir.path(), "t").expect("t.yaml is valid")
    }

    /// A template override directory whose Deployment carries `workload` annotations and
    /// whose pods carry `pod` annotations (kwok fault stages).
    pub fn templates(
        &self,
        name: &str,
        workload: &[(&str, &str)],
        pod: &[(&str, &str)],
    ) -> PathBuf {
        let dir = self.dir.path().join(format!("templates-{name}"));
        std::fs::create_dir_all(dir.join("k8s")).expect("mkdir");
        let original = std::fs::read_to_string(root().join("templates/k8s/deployment.yaml.tera"))
            .expect("template");
        let lines = |indent: &str, pairs: &[(&str, &str)]| -> String {
            pairs
                .iter()
                .map(|(k, v)| format!("{indent}{k}: \"{v}\"\n"))
                .collect()
        };
        let mut patched = original.replacen(
            "      annotations:\n",
            &format!("      annotations:\n{}", lines("        ", pod)),
            1,
        );
        assert!(
            pod.is_empty() || patched != original,
            "the deployment template has no pod annotations"
        );
        if !workload.is_empty() {
            let labels = "  labels: {{ labels | json_encode() }}\n";
            let before = patched.clone();
            patched = patched.replacen(
                labels,
                &format!("{labels}  annotations:\n{}", lines("    ", workload)),
                1,
            );
            assert_ne!(
                patched, before,
                "the deployment template has no labels line"
            );
        }
        std::fs::write(dir.join("k8s/deployment.yaml.tera"), patched).expect("write");
        dir
    }

    /// Template overrides whose pods carry the kwok `fault` annotation.
    pub fn fault_templates(&self, fault: &str) -> PathBuf {
        self.templates(fault, &[], &[("wactl.dev/kwok-fault", fault)])
    }

    /// `wactl --env-dir DIR --no-color ARGS`, outside CI and GitHub Actions.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wactl"));
        command
            .arg("--env-dir")
            .arg(self.dir.path())
            .arg("--no-color")
            .args(args)
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS");
        command
    }

    pub fn wactl(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run wactl")
    }

    /// Creates the namespace (and waits for its default ServiceAccount, which pods need).
    pub async fn create_namespace(&self, client: &Client) {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace: Namespace = serde_json::from_value(
            serde_json::json!({ "metadata": { "name": self.namespace.as_str() } }),
        )
        .expect("namespace");
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create namespace");
        let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &self.namespace);
        // kube-controller-manager creates it; on a busy machine that can take a while.
        let asked = std::time::Instant::now();
        while asked.elapsed() < Duration::from_secs(60) {
            if accounts.get_opt("default").await.ok().flatten().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "namespace {}: no default ServiceAccount after 60 s",
            self.namespace
        );
    }

    /// Creates a Secret `name` with `string_data` in the namespace.
    pub async fn create_secret(&self, client: &Client, name: &str, string_data: serde_json::Value) {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "namespace": self.namespace.as_str() },
            "stringData": string_data
        }))
        .expect("secret");
        Api::<Secret>::namespaced(client.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
    }

    /// Pre-binds one hostPath volume per StatefulSet claim under `host_dir` (world-writable:
    /// hostPath volumes ignore `fsGroup`): the test cluster has no provisioner. Deleted on drop.
    pub async fn create_volumes(&self, client: &Client, host_dir: &Path, claims: &[&str]) {
        let api: Api<PersistentVolume> = Api::all(client.clone());
        for claim in claims {
            let path = host_dir.join(claim);
            std::fs::create_dir_all(&path).expect("volume dir");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .expect("chmod volume dir");
            let name = format!("{}-{claim}", self.namespace);
            let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": { "name": name },
                "spec": { "capacity": { "storage": "10Gi" }, "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": { "path": path.to_str().expect("utf-8") },
                    "claimRef": { "namespace": self.namespace.as_str(), "name": claim } }
            }))
            .expect("pv");
            api.create(&PostParams::default(), &pv)
                .await
                .expect("create pv");
            self.volumes.lock().expect("lock").push(name);
        }
    }
}

impl Drop for TestEnv {
    /// `wactl destroy t --yes --force-unlock`, then the namespace and the volumes go, on a
    /// thread of its own: a test's runtime may be the one panicking.
    fn drop(&mut self) {
        let _ = self
            .command(&["--yes", "destroy", "t", "--force-unlock"])
            .output();
        let namespace = self.namespace.clone();
        let volumes = std::mem::take(&mut *self.volumes.lock().unwrap_or_else(|e| e.into_inner()));
        let Ok(env) = wactl::config::load(self.dir.path(), "t") else {
            return;
        };
        let cleaned = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok(client) = cluster::connect(&env, &Access::default()).await else {
                    return;
                };
                let _ = Api::<Namespace>::all(client.clone())
                    .delete(&namespace, &DeleteParams::default())
                    .await;
                let pvs: Api<PersistentVolume> = Api::all(client);
                for volume in volumes {
                    let _ = pvs.delete(&volume, &DeleteParams::default()).await;
                }
            });
        });
        let _ = cleaned.join();
    }
}

pub async fn client(env: &Environment) -> Client {
    cluster::connect(env, &Access::default())
        .await
        .expect("cluster reachable")
}

/// Deploy options for an already-built `image`, with a 60 s rollout timeout.
pub fn options(image: &str) -> DeployOptions {
    DeployOptions {
        image: Some(image.to_owned()),
        skip_build: true,
        timeout: Some(Duration::from_secs(60)),
        ..DeployOptions::default()
    }
}

/// The image of the `address-service` Deployment's first container.
pub async fn live_image(client: &Client, namespace: &str) -> String {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), namespace);
    let d = api.get("address-service").await.expect("deployment");
    d.spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.first().and_then(|c| c.image.clone()))
        .unwrap_or_default()
}

/// Digests of the images this test process made sure the registry has, by reference.
static PUSHED: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// Pushes every image of [`RELEASE_IMAGES`] (once per test process).
pub fn push_release_images() {
    for reference in RELEASE_IMAGES {
        push(reference);
    }
}

/// Makes sure the local registry has `reference` and returns its digest. The image is the
/// pause image of `cargo xtask infra images` (kwok's nodes never run it) plus a label naming
/// the reference, so every tag has a digest of its own. It is built once per Docker engine
/// and pushed as is, so test processes running side by side push the same digest.
pub fn push(reference: &str) -> String {
    let mut pushed = PUSHED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(digest) = pushed.get(reference) {
        return digest.clone();
    }
    let docker = |args: &[&str], stdin: Option<&str>| -> String {
        use std::io::Write;
        let mut child = Command::new("docker")
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("docker");
        if let Some(text) = stdin {
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(text.as_bytes()).expect("write to docker");
        }
        let out = child.wait_with_output().expect("docker");
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let present = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .expect("docker image inspect")
        .status
        .success();
    if !present {
        let dockerfile = format!(
            "FROM wactl.local/pause:3.10\nLABEL dev.wactl.test.reference=\"{reference}\"\n"
        );
        docker(
            &["build", "--quiet", "--tag", reference, "-"],
            Some(&dockerfile),
        );
    }
    // `docker push` ends with `TAG: digest: sha256:… size: N`.
    let output = docker(&["push", reference], None);
    let digest = output
        .split_whitespace()
        .skip_while(|word| *word != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in the output of docker push {reference}:\n{output}"))
        .to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    pushed.insert(reference.to_owned(), digest.clone());
    digest
}

/// `reference@digest`: what a deploy of `--image reference` resolves, applies and records.
pub fn pinned(reference: &str) -> String {
    format!("{reference}@{}", push(reference))
}

/// The kubectl `cargo xtask infra` builds (the one on PATH may be another version).
pub fn kubectl() -> PathBuf {
    let cache = std::env::var_os("WACTL_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/wactl")
        });
    std::fs::read_dir(cache.join("bin"))
        .expect("the infra binary cache: run `cargo xtask infra up`")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kubectl-v"))
        })
        .expect("kubectl in the infra binary cache")
}

/// A Prometheus of Debian's package on 127.0.0.1, scraping itself every second, listening
/// when `start` returns; killed on drop.
pub struct LocalPrometheus {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl LocalPrometheus {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s }}\nscrape_configs:\n  - job_name: self\n    static_configs: [{{ targets: ['127.0.0.1:{port}'] }}]\n"
            ),
        )
        .expect("config");
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package; cargo xtask infra up installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("127.0.0.1:{port}");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(&ready).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "Prometheus does not listen on {ready} after 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url,
            _dir: dir,
        }
    }
}

impl Drop for LocalPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
