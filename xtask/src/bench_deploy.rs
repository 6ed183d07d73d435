//! `cargo xtask bench deploy`: `wactl deploy` against `kubectl apply` + `kubectl rollout
//! status` on the same rendered objects, on the test cluster of `cargo xtask infra up`, in
//! one run: first deploy to ready, image change to ready, no-op, and how long after the
//! rollout starts each tool reports a crash-looping Deployment as failed.
//!
//! Each tool gets its own namespace. kubectl has no notion of a crash loop: `rollout status`
//! fails only when the Deployment's progress deadline (set to 30 s here for both) passes.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

const V1: &str = "127.0.0.1:5000/world-address/address-service:bench-v1";
const V2: &str = "127.0.0.1:5000/world-address/address-service:bench-v2";

struct Bench {
    wactl: PathBuf,
    env_dir: PathBuf,
    kubectl: PathBuf,
}

fn run_checked(cmd: &mut Command, what: &str) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}

impl Bench {
    fn wactl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.wactl);
        cmd.arg("--env-dir")
            .arg(&self.env_dir)
            .arg("--no-color")
            .args(args);
        cmd.env_remove("CI");
        cmd
    }

    fn deploy(&self, env: &str, image: &str, extra: &[&str]) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut args = vec!["deploy", env, "--skip-build", "--image", image];
        args.extend_from_slice(extra);
        run_checked(&mut self.wactl(&args), "wactl deploy")?;
        Ok(start.elapsed())
    }

    /// `kubectl apply` of a rendered tree, then `rollout status`; Err carries the time when
    /// the rollout fails.
    fn kubectl_apply(
        &self,
        dir: &Path,
        namespace: &str,
    ) -> anyhow::Result<Result<Duration, Duration>> {
        let start = Instant::now();
        run_checked(
            Command::new(&self.kubectl)
                .arg("apply")
                .arg("-f")
                .arg(dir.join("k8s")),
            "kubectl apply",
        )?;
        let rollout = Instant::now();
        let status = Command::new(&self.kubectl)
            .args([
                "rollout",
                "status",
                "deployment/address-service",
                "-n",
                namespace,
                "--timeout",
                "120s",
            ])
            .output()?;
        Ok(if status.status.success() {
            Ok(start.elapsed())
        } else {
            Err(rollout.elapsed())
        })
    }

    fn render(
        &self,
        env: &str,
        image: &str,
        out: &Path,
        templates: Option<&Path>,
    ) -> anyhow::Result<()> {
        let out_s = out.to_string_lossy().into_owned();
        let mut args = vec!["render", env, "--image", image, "--out", &out_s];
        let t;
        if let Some(dir) = templates {
            t = dir.to_string_lossy().into_owned();
            args.extend(["--templates", &t]);
        }
        run_checked(&mut self.wactl(&args), "wactl render")?;
        Ok(())
    }

    fn delete_namespace(&self, namespace: &str) {
        let _ = Command::new(&self.kubectl)
            .args([
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(peer: Duration, ours: Duration) -> String {
    format!("{:.2}×", peer.as_secs_f64() / ours.as_secs_f64().max(1e-6))
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::project::root();
    let runs = args.runs.max(1);
    let kubeconfig = std::env::var("KUBECONFIG").context(
        "KUBECONFIG is not set: run `cargo xtask infra up` and `eval \"$(cargo xtask infra env)\"`",
    )?;
    let wactl = crate::bench::build_wactl("deploy")?;
    let work = tempfile::tempdir()?;
    let env_dir = work.path().join("environments");
    std::fs::create_dir_all(&env_dir)?;
    std::fs::copy(
        root.join("environments/base.yaml"),
        env_dir.join("base.yaml"),
    )?;
    let pid = std::process::id();
    let (ns_w, ns_k) = (
        format!("wactl-bench-w-{pid}"),
        format!("wactl-bench-k-{pid}"),
    );
    for (name, ns) in [("w", &ns_w), ("k", &ns_k)] {
        std::fs::write(
            env_dir.join(format!("{name}.yaml")),
            format!(
                "extends: base\ncluster:\n  kubeconfig: {kubeconfig}\n  context: wactl-dev\n  namespace: {ns}\nreplicas: 3\nrollout:\n  progressDeadlineSeconds: 30\ngithub:\n  environment: {name}\n  deployments: false\n"
            ),
        )?;
    }
    // Pods that crash-loop (kwok fault stage), through a template override.
    let faults = work.path().join("templates");
    std::fs::create_dir_all(faults.join("k8s"))?;
    let template = std::fs::read_to_string(root.join("templates/k8s/deployment.yaml.tera"))?;
    std::fs::write(
        faults.join("k8s/deployment.yaml.tera"),
        template.replacen(
            "      annotations:\n",
            "      annotations:\n        wactl.dev/kwok-fault: crashloop\n",
            1,
        ),
    )?;
    let bench = Bench {
        wactl,
        env_dir,
        kubectl: PathBuf::from("/usr/bin/kubectl"),
    };
    let faults_s = faults.to_string_lossy().into_owned();

    let mut rows: Vec<(&str, Vec<Duration>, Vec<Duration>)> = vec![
        ("first deploy to ready", vec![], vec![]),
        ("image change to ready", vec![], vec![]),
        ("no-op deploy", vec![], vec![]),
        (
            "crash loop: rollout start → failure reported",
            vec![],
            vec![],
        ),
    ];
    let (v1_dir, v2_dir, crash_dir) = (
        work.path().join("k-v1"),
        work.path().join("k-v2"),
        work.path().join("k-crash"),
    );
    bench.render("k", V1, &v1_dir, None)?;
    bench.render("k", V2, &v2_dir, None)?;
    bench.render("k", V2, &crash_dir, Some(&faults))?;
    for run in 0..runs {
        eprintln!("bench deploy: run {}/{runs}", run + 1);
        bench.delete_namespace(&ns_w);
        bench.delete_namespace(&ns_k);
        rows[0].1.push(bench.deploy("w", V1, &[])?);
        rows[1].1.push(bench.deploy("w", V2, &[])?);
        rows[2].1.push(bench.deploy("w", V2, &[])?);
        let out = bench
            .wactl(&[
                "deploy",
                "w",
                "--skip-build",
                "--image",
                V1,
                "--templates",
                &faults_s,
                "--output",
                "json",
                "--no-rollback",
            ])
            .output()?;
        let report: serde_json::Value = serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter()
            .next()
            .context("wactl printed no JSON report")??;
        let track = report["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "track"))
            .and_then(|s| s["duration_ms"].as_u64())
            .context("no track stage in the report")?;
        if report["error"]["code"] != "crash_loop" {
            bail!("wactl did not report a crash loop: {report}");
        }
        rows[3].1.push(Duration::from_millis(track));

        let first = bench
            .kubectl_apply(&v1_dir, &ns_k)?
            .map_err(|_| anyhow::anyhow!("kubectl rollout failed"))?;
        rows[0].2.push(first);
        rows[1].2.push(
            bench
                .kubectl_apply(&v2_dir, &ns_k)?
                .map_err(|_| anyhow::anyhow!("kubectl rollout failed"))?,
        );
        rows[2].2.push(
            bench
                .kubectl_apply(&v2_dir, &ns_k)?
                .map_err(|_| anyhow::anyhow!("kubectl rollout failed"))?,
        );
        match bench.kubectl_apply(&crash_dir, &ns_k)? {
            Err(failed_after) => rows[3].2.push(failed_after),
            Ok(_) => bail!("kubectl rollout status accepted a crash-looping Deployment"),
        }
    }
    bench.delete_namespace(&ns_w);
    bench.delete_namespace(&ns_k);

    let mut table = String::from(
        "| measurement | wactl | kubectl apply + rollout status | kubectl ÷ wactl |\n| --- | ---: | ---: | ---: |\n",
    );
    for (name, ours, peer) in rows {
        let (o, p) = (median(ours), median(peer));
        table.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            ms(o),
            ms(p),
            ratio(p, o)
        ));
    }
    let body = format!(
        "Median of {runs} run(s) on the kwok test cluster (`cargo xtask infra up`), debug build of wactl, 3 replicas, \
         the service Deployment and its 10 companion objects, each tool in its own namespace. \
         kubectl's crash-loop time is `rollout status` failing at the 30 s progress deadline; wactl's is its \
         track stage (the failure is reported with the pod's events; rollback disabled for the measurement). \
         Helm was not measured in this run.\n\n{table}"
    );
    println!("{body}");
    crate::bench::write_section(
        "deploy",
        "`cargo xtask bench deploy` — `wactl deploy` vs `kubectl apply` + `kubectl rollout status`.",
        &body,
    )?;
    eprintln!("bench deploy: wrote the `deploy` section of docs/benchmarks.md");
    Ok(())
}
