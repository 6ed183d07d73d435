//! The two-cluster part of `cargo xtask bench deploy`: one environment in two clusters of
//! one wave (`clusters:`, the first and the second control plane of `cargo xtask infra up
//! --second-cluster`) against the same environment in one cluster, and against two
//! `helm upgrade --install --wait` run one after the other (what helmfile does), on the same
//! rendered objects: first deploy to ready and image change to ready.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const V1: &str = "127.0.0.1:5000/world-address/address-service:bench-v1";
const V2: &str = "127.0.0.1:5000/world-address/address-service:bench-v2";
const FIRST: &str = "wactl-dev";

struct Fleet {
    wactl: PathBuf,
    env_dir: PathBuf,
    helm: PathBuf,
    second: String,
}

impl Fleet {
    fn deploy(&self, env: &str, image: &str) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let out = Command::new(&self.wactl)
            .arg("--env-dir")
            .arg(&self.env_dir)
            .args([
                "--no-color",
                "-q",
                "deploy",
                env,
                "--skip-build",
                "--image",
                image,
            ])
            .env_remove("CI")
            .output()
            .context("cannot run wactl")?;
        if !out.status.success() {
            bail!(
                "wactl deploy {env} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(start.elapsed())
    }

    /// `helm upgrade --install --wait` into each cluster, one after the other.
    fn helm_each(&self, chart: &Path, namespace: &str) -> anyhow::Result<Duration> {
        let start = Instant::now();
        for context in [FIRST, self.second.as_str()] {
            let out = Command::new(&self.helm)
                .args(["upgrade", "--install", "bench", "--kube-context", context])
                .arg(chart)
                .args([
                    "--namespace",
                    namespace,
                    "--create-namespace",
                    "--wait",
                    "--timeout",
                    "120s",
                ])
                .output()
                .context("cannot run helm")?;
            if !out.status.success() {
                bail!(
                    "helm in {context} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(start.elapsed())
    }

    fn delete_namespace(&self, namespace: &str) {
        for context in [FIRST, self.second.as_str()] {
            let _ = Command::new("/usr/bin/kubectl")
                .args([
                    "--context",
                    context,
                    "delete",
                    "namespace",
                    namespace,
                    "--ignore-not-found",
                    "--wait=true",
                    "--timeout=120s",
                ])
                .output();
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64().max(1e-6))
}

/// Measures and writes the `deploy-two-clusters` section of docs/benchmarks.md.
pub fn run(
    runs: usize,
    wactl: PathBuf,
    helm: PathBuf,
    kubeconfig: &str,
    work: &Path,
    chart: impl Fn(&Path, &Path) -> anyhow::Result<usize>,
) -> anyhow::Result<()> {
    let root = crate::project::root();
    let second = std::env::var("WACTL_CONTEXT_2").context(
        "WACTL_CONTEXT_2 is not set: run `cargo xtask infra up --second-cluster` and `eval \"$(cargo xtask infra env)\"`",
    )?;
    let env_dir = work.join("environments-fleet");
    std::fs::create_dir_all(&env_dir)?;
    std::fs::copy(
        root.join("environments/base.yaml"),
        env_dir.join("base.yaml"),
    )?;
    let pid = std::process::id();
    let ns = |name: &str| format!("wactl-bench-{name}-{pid}");
    let single = |name: &str, extra: &str| {
        format!(
            "extends: base\ncluster:\n  kubeconfig: {kubeconfig}\n  context: {FIRST}\n  namespace: {}\nreplicas: 3\n\
             rollout:\n  progressDeadlineSeconds: 30\ngithub:\n  environment: {name}\n  deployments: false\n{extra}",
            ns(name)
        )
    };
    std::fs::write(env_dir.join("one.yaml"), single("one", ""))?;
    std::fs::write(
        env_dir.join("two.yaml"),
        single(
            "two",
            &format!(
                "clusters:\n  - {{ name: a, context: {FIRST} }}\n  - {{ name: b, context: {second} }}\n"
            ),
        ),
    )?;
    std::fs::write(env_dir.join("helm.yaml"), single("helm", ""))?;
    let bench = Fleet {
        wactl,
        env_dir,
        helm,
        second,
    };
    // Helm's charts: the same objects, rendered once by wactl for Helm's namespace.
    let mut charts = Vec::new();
    for (step, image) in [("v1", V1), ("v2", V2)] {
        let rendered = work.join(format!("fleet-r-{step}"));
        let out = Command::new(&bench.wactl)
            .arg("--env-dir")
            .arg(&bench.env_dir)
            .args(["render", "helm", "--image", image, "--out"])
            .arg(&rendered)
            .output()
            .context("cannot run wactl render")?;
        if !out.status.success() {
            bail!(
                "wactl render failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let chart_dir = work.join(format!("fleet-c-{step}"));
        chart(&rendered, &chart_dir)?;
        charts.push(chart_dir);
    }

    let names = ["first deploy to ready", "image change to ready"];
    let (mut one, mut two, mut helm) = ([vec![], vec![]], [vec![], vec![]], [vec![], vec![]]);
    for run in 0..runs {
        eprintln!("bench deploy (two clusters): run {}/{runs}", run + 1);
        for name in ["one", "two", "helm"] {
            bench.delete_namespace(&ns(name));
        }
        one[0].push(bench.deploy("one", V1)?);
        one[1].push(bench.deploy("one", V2)?);
        two[0].push(bench.deploy("two", V1)?);
        two[1].push(bench.deploy("two", V2)?);
        helm[0].push(bench.helm_each(&charts[0], &ns("helm"))?);
        helm[1].push(bench.helm_each(&charts[1], &ns("helm"))?);
    }
    for name in ["one", "two", "helm"] {
        bench.delete_namespace(&ns(name));
    }

    let mut table = String::from(
        "| measurement | wactl, 1 cluster | wactl, 2 clusters in one wave | helm --wait, 2 clusters one after the other | 2 clusters ÷ 1 cluster (wactl) | Helm ÷ wactl (2 clusters) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (i, name) in names.iter().enumerate() {
        let (o, t, h) = (
            median(one[i].clone()),
            median(two[i].clone()),
            median(helm[i].clone()),
        );
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            ms(o),
            ms(t),
            ms(h),
            ratio(t, o),
            ratio(h, t)
        ));
    }
    let body = format!(
        "Median of {runs} run(s): the first control plane of `cargo xtask infra up` (Kubernetes 1.36) and the second \
         (`--second-cluster`, 1.35), kwok nodes, debug build of wactl, Helm v3.22.0, 3 replicas, each tool in its own \
         namespace. wactl deploys both clusters of one wave in parallel, each with its own lock, plan, tracking and \
         revision; Helm runs once per cluster, one after the other, as helmfile does. The aim is 2 clusters ÷ 1 \
         cluster ≤ 1.3×; higher Helm ÷ wactl ratios are better for wactl.\n\n{table}"
    );
    println!("{body}");
    crate::bench::write_section(
        "deploy-two-clusters",
        "`cargo xtask bench deploy` — one environment in two clusters of one wave vs one cluster vs two sequential `helm upgrade --install --wait`.",
        &body,
    )?;
    eprintln!("bench deploy: wrote the `deploy-two-clusters` section of docs/benchmarks.md");
    Ok(())
}
