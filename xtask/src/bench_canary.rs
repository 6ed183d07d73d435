//! `cargo xtask bench canary`: how many requests does a bad release fail, and how fast is it
//! stopped, with `rollout.strategy: canary` against a rolling deploy (wactl's default) and
//! `kubectl rollout`; and what a good release's canary costs in time against a rolling one.
//!
//! One environment beside `dev-monitor` (its bundled Prometheus, 3 replicas on the real node)
//! in a namespace of its own with a NodePort, made for the run and removed after it. The bad
//! release is the same image with `REQUIRE_API_KEY: "true"` (every request without a key
//! gets 401, readiness still passes); a good release changes `REQUEST_TIMEOUT`.

use crate::bench::{build_wactl, write_section};
use crate::bench_rolling::{Kubectl, checked, load_average, validate};
use crate::{infra, project};
use anyhow::{Context, ensure};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per second the load generator aims at.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
}

const ENVIRONMENT: &str = "bench";
const NAMESPACE: &str = "wactl-bench-canary";
const NODE_PORT: u16 = 30094;
const WORKERS: u32 = 8;
const IMAGE: &str = "127.0.0.1:5000/world-address/address-service:dev-monitor";
const CLAIMS: [&str; 3] = [
    "data-address-service-postgres-0",
    "data-address-service-redis-0",
    "data-address-service-prometheus-0",
];

/// What the load generator saw during one command.
#[derive(Debug)]
struct Window {
    what: String,
    duration: Duration,
    sent: usize,
    failed: usize,
    /// From the first failed request to the command's end (the abort, for wactl).
    first_failure_to_end: Option<Duration>,
    exit: Option<i32>,
}

/// Validate requests at `rate` per second, each on a new connection, with their times.
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(Instant, bool)>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(rate: u32) -> anyhow::Result<Self> {
        let addr: SocketAddr = format!("127.0.0.1:{NODE_PORT}").parse()?;
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let interval = Duration::from_secs_f64(f64::from(WORKERS) / f64::from(rate));
        let workers = (0..WORKERS)
            .map(|i| {
                let stop = Arc::clone(&stop);
                let samples = Arc::clone(&samples);
                std::thread::spawn(move || {
                    std::thread::sleep(interval * i / WORKERS);
                    let mut next = Instant::now();
                    // Bounded: 30 minutes at most.
                    let deadline = Instant::now() + Duration::from_secs(1800);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let at = Instant::now();
                        let ok = validate(addr).is_ok();
                        if let Ok(mut s) = samples.lock() {
                            s.push((at, ok));
                        }
                        next += interval;
                        match next.checked_duration_since(Instant::now()) {
                            Some(wait) => std::thread::sleep(wait),
                            None => next = Instant::now(),
                        }
                    }
                })
            })
            .collect();
        Ok(Self {
            stop,
            samples,
            workers,
        })
    }

    /// Runs `command` and summarises the requests sent while it ran.
    fn measure(
        &self,
        what: &str,
        command: impl FnOnce() -> anyhow::Result<Option<i32>>,
    ) -> anyhow::Result<Window> {
        let started = Instant::now();
        let exit = command()?;
        let end = Instant::now();
        let samples = self
            .samples
            .lock()
            .map_err(|_| anyhow::anyhow!("load samples poisoned"))?;
        let inside: Vec<&(Instant, bool)> = samples
            .iter()
            .filter(|(at, _)| *at >= started && *at <= end)
            .collect();
        ensure!(!inside.is_empty(), "no request was sent during {what}");
        let first_failure = inside.iter().filter(|(_, ok)| !ok).map(|(at, _)| *at).min();
        let window = Window {
            what: what.to_owned(),
            duration: end - started,
            sent: inside.len(),
            failed: inside.iter().filter(|(_, ok)| !ok).count(),
            first_failure_to_end: first_failure.map(|f| end - f),
            exit,
        };
        eprintln!("bench canary: {window:?}");
        Ok(window)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// `bench.yaml`: dev-monitor in its own namespace with a NodePort, the given strategy and
/// extra configuration.
fn definition(kubeconfig: &str, strategy: &str, config: &str) -> String {
    format!(
        "extends: dev-monitor\ncluster:\n  kubeconfig: {kubeconfig}\n  context: wactl-dev\n  namespace: {NAMESPACE}\n\
         service:\n  nodePort: {NODE_PORT}\nsmoke:\n  url: http://127.0.0.1:{NODE_PORT}\n\
         rollout:\n  strategy: {strategy}\n{}\
         config:\n  RATE_LIMIT_PER_MINUTE: \"600000\"\n{config}",
        if strategy == "canary" {
            "  steps:\n    - { weight: 25, analyze: 30s }\n    - { weight: 50, analyze: 30s }\n  analysis: { interval: 10s, failureLimit: 1, inconclusiveLimit: 2 }\n"
        } else {
            ""
        }
    )
}

/// The namespace, the Secret and one volume per claim, as `infra up` gives dev-real.
fn prerequisites(kubectl: &Kubectl, volumes: &Path) -> anyhow::Result<()> {
    let password = format!("b{:x}", std::process::id() ^ 0x0bad_5eed);
    let mut manifest = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: address-service-postgres\n  namespace: {NAMESPACE}\n\
         stringData:\n  password: \"{password}\"\n  url: \"postgres://address:{password}@address-service-postgres:5432/address\"\n"
    );
    for claim in CLAIMS {
        let path = volumes.join(claim);
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {NAMESPACE}-{claim}\nspec:\n  \
             capacity: {{ storage: 10Gi }}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  \
             hostPath: {{ path: {} }}\n  claimRef: {{ namespace: {NAMESPACE}, name: {claim} }}\n",
            path.display()
        ));
    }
    let manifest_file = volumes.join("prerequisites.yaml");
    std::fs::write(&manifest_file, manifest)?;
    let mut apply = kubectl.command();
    apply.args(["apply", "-f"]).arg(&manifest_file);
    checked(apply, "kubectl apply (prerequisites)").map(drop)
}

fn cleanup(kubectl: &Kubectl) {
    let mut ns = kubectl.command();
    ns.args([
        "delete",
        "namespace",
        NAMESPACE,
        "--ignore-not-found",
        "--wait=true",
        "--timeout=120s",
    ]);
    let _ = ns.output();
    for claim in CLAIMS {
        let mut pv = kubectl.command();
        pv.args([
            "delete",
            "pv",
            &format!("{NAMESPACE}-{claim}"),
            "--ignore-not-found",
        ]);
        let _ = pv.output();
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    ensure!(args.rate > 0, "--rate must be at least 1");
    infra::up(&infra::UpOptions {
        images: true,
        real_node: true,
        second_cluster: false,
    })?;
    let wactl = build_wactl("canary")?;
    let env_vars = infra::env_vars()?;
    let kubectl = Kubectl::of_infra(&env_vars)?;
    let kubeconfig = kubectl.kubeconfig.clone();
    let dir = tempfile::tempdir()?;
    for entry in std::fs::read_dir(project::root().join("environments"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.path().join(path.file_name().context("name")?))?;
        }
    }
    let volumes = dir.path().join("volumes");
    cleanup(&kubectl);
    prerequisites(&kubectl, &volumes)?;
    let result = scenarios(args, &wactl, dir.path(), &kubeconfig, &kubectl, &env_vars);
    let mut destroy = Command::new(&wactl);
    destroy
        .arg("--env-dir")
        .arg(dir.path())
        .args(["--yes", "destroy", ENVIRONMENT, "--force-unlock"])
        .envs(env_vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let _ = destroy.output();
    cleanup(&kubectl);
    let windows = result?;
    write_section("canary", &intro(args.rate), &table(&windows))?;
    eprintln!("bench canary: results in docs/benchmarks.md");
    Ok(())
}

fn scenarios(
    args: &Args,
    wactl: &Path,
    env_dir: &Path,
    kubeconfig: &str,
    kubectl: &Kubectl,
    env_vars: &[(String, String)],
) -> anyhow::Result<Vec<Window>> {
    let write = |strategy: &str, config: &str| {
        std::fs::write(
            env_dir.join(format!("{ENVIRONMENT}.yaml")),
            definition(kubeconfig, strategy, config),
        )
    };
    let deploy = || -> anyhow::Result<Option<i32>> {
        let out = Command::new(wactl)
            .arg("--env-dir")
            .arg(env_dir)
            .args([
                "--no-color",
                "deploy",
                ENVIRONMENT,
                "--yes",
                "--skip-build",
                "--image",
                IMAGE,
            ])
            .env_remove("CI")
            .envs(env_vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()?;
        Ok(out.status.code())
    };
    const BAD: &str = "  REQUIRE_API_KEY: \"true\"\n";
    // The first deploy (untimed): a rolling one that gives the stable pods their track label.
    write("canary", "")?;
    ensure!(
        deploy()? == Some(0),
        "the first deploy of {ENVIRONMENT} failed"
    );
    let load = Load::start(args.rate)?;
    std::thread::sleep(Duration::from_secs(3));
    let mut windows = Vec::new();

    write("canary", BAD)?;
    windows.push(load.measure("bad release, wactl canary (25% then 50%)", deploy)?);
    write("rolling", BAD)?;
    windows.push(load.measure(
        "bad release, wactl rolling (smoke fails, rolls back)",
        deploy,
    )?);
    // Back to a good, labelled state (untimed), then the bad setting through kubectl.
    write("canary", "")?;
    ensure!(deploy()? == Some(0), "restoring {ENVIRONMENT} failed");
    let status = || {
        let mut status = kubectl.command();
        status.args([
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            "deployment/address-service",
            "--timeout=300s",
        ]);
        checked(status, "kubectl rollout status").map(drop)
    };
    windows.push(load.measure(
        "bad release, kubectl set env + rollout status (never aborts)",
        || {
            let mut set = kubectl.command();
            set.args([
                "-n",
                NAMESPACE,
                "set",
                "env",
                "deployment/address-service",
                "REQUIRE_API_KEY=true",
            ]);
            checked(set, "kubectl set env")?;
            status()?;
            Ok(Some(0))
        },
    )?);
    let mut unset = kubectl.command();
    unset.args([
        "-n",
        NAMESPACE,
        "set",
        "env",
        "deployment/address-service",
        "REQUIRE_API_KEY-",
    ]);
    checked(unset, "kubectl set env (undo)")?;
    status()?;
    // The replaced pods keep answering (401) through their preStop sleep and drain.
    std::thread::sleep(Duration::from_secs(20));

    write("canary", "  REQUEST_TIMEOUT: 11s\n")?;
    windows.push(load.measure(
        "good release, wactl canary (25% then 50%, 30 s each)",
        deploy,
    )?);
    write("rolling", "  REQUEST_TIMEOUT: 12s\n")?;
    windows.push(load.measure("good release, wactl rolling", deploy)?);
    load.stop();
    Ok(windows)
}

fn intro(rate: u32) -> String {
    format!(
        "`cargo xtask bench canary`: `dev-monitor` (bundled Prometheus, scrape interval 5 s) in \
         a namespace of its own with 3 replicas on the real node, under {rate} validate \
         requests/s through its NodePort (a new connection per request). The bad release is \
         the same image with `REQUIRE_API_KEY: \"true\"` (401 without a key; readiness passes); \
         the good one changes `REQUEST_TIMEOUT`. Canary: steps 25% (1 pod) and 50% (3 pods), \
         interval 10 s, `failureLimit: 1`. Failed = connection errors, timeouts and non-2xx \
         answers sent while the command ran; \"first failure → end\" is the time from the \
         first failed request to the command's end (the abort, for wactl). `kubectl` never \
         aborts: its count stops when `rollout status` returns, and from then on every \
         request fails until someone notices. wactl rolling counts its smoke failure and \
         rollback. One machine, 2 CPUs shared with other work."
    )
}

fn table(windows: &[Window]) -> String {
    let mut out = String::from(
        "| release | command time (s) | exit | requests sent | failed | first failure → end (s) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for w in windows {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {} | {} | {} |\n",
            w.what,
            w.duration.as_secs_f64(),
            w.exit.map_or("-".to_owned(), |c| c.to_string()),
            w.sent,
            w.failed,
            w.first_failure_to_end
                .map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64()))
        ));
    }
    out.push_str(&format!(
        "\nLoad average when the run ended: {}.\n",
        load_average()
    ));
    out
}
