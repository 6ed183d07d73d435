//! `cargo xtask bench deploy`: `wactl deploy` against `helm upgrade --install --wait` and
//! `kubectl apply` + `kubectl rollout status` on the same rendered objects, on the test
//! cluster of `cargo xtask infra up`, in one run: first deploy to ready, image change to
//! ready, no-op, how long after the rollout starts each tool reports a crash-looping
//! Deployment as failed, and a first deploy and a no-op of 200 objects.
//!
//! Each tool gets its own namespace. Helm's chart is generated from wactl's rendered objects
//! (every scalar a value, as in `bench render`), without the Namespace, which Helm creates.
//! kubectl has no notion of a crash loop: `rollout status` fails only when the Deployment's
//! progress deadline (30 s here for every tool) passes; Helm 3's `--wait` fails at its
//! `--timeout` (60 s here).

use anyhow::{Context, bail, ensure};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Measure only the two-cluster deploys (needs `infra up --second-cluster`).
    #[arg(long)]
    pub two_clusters_only: bool,
}

pub const V1: &str = "127.0.0.1:5000/world-address/address-service:bench-v1";
pub const V2: &str = "127.0.0.1:5000/world-address/address-service:bench-v2";

/// The context of the first control plane of `cargo xtask infra up`.
pub const FIRST_CONTEXT: &str = "wactl-dev";

/// What every deploy measurement uses: wactl (debug build), Helm, kubectl, and a directory
/// of environment definitions (the repository's `base.yaml` plus one file per measured
/// tool, each in a namespace of its own).
pub struct Bench {
    pub wactl: PathBuf,
    env_dir: PathBuf,
    kubectl: PathBuf,
    pub helm: PathBuf,
    kubeconfig: String,
}

/// Helm's wait timeout for the crash-looping release: it fails there, not earlier.
const HELM_TIMEOUT: &str = "60s";

fn run_checked(cmd: &mut Command, what: &str) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}

impl Bench {
    /// Builds wactl, finds Helm, and starts the directory of definitions under `work`.
    pub fn new(work: &Path, kubeconfig: String) -> anyhow::Result<Self> {
        let wactl = crate::bench::build_wactl("deploy")?;
        let helm = crate::bench::ensure_helm()?;
        // `wactl deploy --image` refuses a tag the registry does not have. kwok's nodes never
        // run the image, so the pause image of `infra images` serves under both tags.
        for image in [V1, V2] {
            run_checked(
                Command::new("docker").args(["tag", "wactl.local/pause:3.10", image]),
                "docker tag",
            )?;
            run_checked(
                Command::new("docker").args(["push", "--quiet", image]),
                "docker push",
            )?;
        }
        let env_dir = work.join("environments");
        std::fs::create_dir_all(&env_dir)?;
        std::fs::copy(
            crate::project::root().join("environments/base.yaml"),
            env_dir.join("base.yaml"),
        )?;
        Ok(Self {
            wactl,
            env_dir,
            kubectl: PathBuf::from("/usr/bin/kubectl"),
            helm,
            kubeconfig,
        })
    }

    /// The namespace of environment `name` (this process's own).
    pub fn namespace(name: &str) -> String {
        format!("wactl-bench-{name}-{}", std::process::id())
    }

    /// Writes the definition of environment `name`: the first cluster, namespace
    /// [`Bench::namespace`], 3 replicas, a 30 s progress deadline, no GitHub Deployment;
    /// then `extra` (YAML, e.g. a `clusters:` list).
    pub fn environment(&self, name: &str, extra: &str) -> anyhow::Result<()> {
        std::fs::write(
            self.env_dir.join(format!("{name}.yaml")),
            format!(
                "extends: base\ncluster:\n  kubeconfig: {}\n  context: {FIRST_CONTEXT}\n  namespace: {}\nreplicas: 3\nrollout:\n  progressDeadlineSeconds: 30\ngithub:\n  environment: {name}\n  deployments: false\n{extra}",
                self.kubeconfig,
                Self::namespace(name)
            ),
        )?;
        Ok(())
    }

    fn wactl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.wactl);
        cmd.arg("--env-dir")
            .arg(&self.env_dir)
            .arg("--no-color")
            .args(args);
        cmd.env_remove("CI");
        cmd
    }

    pub fn deploy(&self, env: &str, image: &str, extra: &[&str]) -> anyhow::Result<Duration> {
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

    pub fn render(
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

    /// Deploys the crash-looping Deployment without rollback; the time of wactl's track
    /// stage, which ends when wactl reports the crash loop.
    fn crash_loop_reported(&self, templates: &str) -> anyhow::Result<Duration> {
        let out = self
            .wactl(&[
                "deploy",
                "w",
                "--skip-build",
                "--image",
                V1,
                "--templates",
                templates,
                "--output",
                "json",
                "--no-rollback",
            ])
            .output()?;
        let report: serde_json::Value = serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter()
            .next()
            .context("wactl printed no JSON report")??;
        if report["error"]["code"] != "crash_loop" {
            bail!("wactl did not report a crash loop: {report}");
        }
        let track = report["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "track"))
            .and_then(|s| s["duration_ms"].as_u64())
            .context("no track stage in the report")?;
        Ok(Duration::from_millis(track))
    }

    /// `helm upgrade --install --wait`; Err carries the time when Helm reports failure.
    /// `context`: the kubeconfig's current context when `None`.
    pub fn helm_upgrade(
        &self,
        chart: &Path,
        namespace: &str,
        timeout: &str,
        context: Option<&str>,
    ) -> anyhow::Result<Result<Duration, Duration>> {
        let start = Instant::now();
        let mut helm = Command::new(&self.helm);
        helm.args(["upgrade", "--install", "bench"]);
        if let Some(context) = context {
            helm.args(["--kube-context", context]);
        }
        let out = helm
            .arg(chart)
            .args([
                "--namespace",
                namespace,
                "--create-namespace",
                "--wait",
                "--timeout",
                timeout,
            ])
            .output()
            .context("cannot run helm")?;
        Ok(if out.status.success() {
            Ok(start.elapsed())
        } else {
            eprintln!(
                "bench deploy: helm failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            Err(start.elapsed())
        })
    }

    /// Deletes `namespace` (in `context`, else the kubeconfig's current one) and waits.
    pub fn delete_namespace(&self, namespace: &str, context: Option<&str>) {
        let mut kubectl = Command::new(&self.kubectl);
        if let Some(context) = context {
            kubectl.args(["--context", context]);
        }
        let _ = kubectl
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

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// `peer ÷ ours`.
pub fn ratio(peer: Duration, ours: Duration) -> String {
    format!("{:.2}×", peer.as_secs_f64() / ours.as_secs_f64().max(1e-6))
}

/// A Deployment that never becomes ready: its pods crash-loop (kwok fault stage).
fn crash_loop_templates(dir: &Path, root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("k8s"))?;
    let template = std::fs::read_to_string(root.join("templates/k8s/deployment.yaml.tera"))?;
    let faulty = template.replacen(
        "      annotations:\n",
        "      annotations:\n        wactl.dev/kwok-fault: crashloop\n",
        1,
    );
    ensure!(
        faulty != template,
        "the Deployment template has no pod annotations to extend"
    );
    std::fs::write(dir.join("k8s/deployment.yaml.tera"), faulty)?;
    Ok(())
}

/// The service's ConfigMap plus `extra` more, so that a release has about 200 objects.
fn many_objects_templates(dir: &Path, root: &Path, extra: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("k8s"))?;
    let template = std::fs::read_to_string(root.join("templates/k8s/configmap.yaml.tera"))?;
    std::fs::write(
        dir.join("k8s/configmap.yaml.tera"),
        format!(
            "{template}\n{{% for i in range(end={extra}) %}}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-{{{{ i }}}}\n  namespace: {{{{ env.cluster.namespace }}}}\n  labels: {{{{ labels | json_encode() }}}}\ndata:\n  index: \"{{{{ i }}}}\"\n  payload: \"{{{{ env.app.name }}}}-{{{{ i }}}}\"\n{{% endfor %}}\n"
        ),
    )?;
    Ok(())
}

#[derive(Default)]
struct Row {
    name: &'static str,
    wactl: Vec<Duration>,
    helm: Vec<Duration>,
    kubectl: Vec<Duration>,
}

pub fn ok(result: Result<Duration, Duration>, what: &str) -> anyhow::Result<Duration> {
    result.map_err(|_| anyhow::anyhow!("{what} failed on a healthy rollout"))
}

/// A chart reproducing the rendered Kubernetes objects in `rendered`, Namespace aside
/// (Helm creates it); the number of objects in it.
pub fn chart(rendered: &Path, chart: &Path) -> anyhow::Result<usize> {
    let objects: Vec<serde_json::Value> = crate::bench_render::read_objects(&rendered.join("k8s"))?
        .into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .collect();
    crate::bench_render::write_chart(chart, &objects)?;
    Ok(objects.len())
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::project::root();
    let runs = args.runs.max(1);
    let kubeconfig = std::env::var("KUBECONFIG").context(
        "KUBECONFIG is not set: run `cargo xtask infra up` and `eval \"$(cargo xtask infra env)\"`",
    )?;
    let work = tempfile::tempdir()?;
    let bench = Bench::new(work.path(), kubeconfig)?;
    if args.two_clusters_only {
        return crate::bench_deploy_fleet::run(runs, &bench, work.path());
    }
    for tool in ["w", "h", "k"] {
        bench.environment(tool, "")?;
    }
    let (faults, many) = (work.path().join("faults"), work.path().join("many"));
    crash_loop_templates(&faults, &root)?;
    many_objects_templates(&many, &root, 190)?;
    let path = |s: &Path| s.to_string_lossy().into_owned();
    let (faults_s, many_s) = (path(&faults), path(&many));

    // The same objects for Helm and kubectl: rendered once, by wactl, per step.
    let dirs = ["v1", "v2", "crash", "many"].map(|step| work.path().join(format!("r-{step}")));
    let charts = ["v1", "v2", "crash", "many"].map(|step| work.path().join(format!("c-{step}")));
    bench.render("h", V1, &dirs[0], None)?;
    bench.render("h", V2, &dirs[1], None)?;
    bench.render("h", V2, &dirs[2], Some(&faults))?;
    bench.render("h", V1, &dirs[3], Some(&many))?;
    let mut counts = [0; 4];
    for i in 0..4 {
        counts[i] = chart(&dirs[i], &charts[i])?;
    }
    let many_objects = crate::bench_render::read_objects(&dirs[3].join("k8s"))?.len();
    // kubectl applies the same trees, rendered for its own namespace.
    let kdirs = ["v1", "v2", "crash", "many"].map(|step| work.path().join(format!("k-{step}")));
    bench.render("k", V1, &kdirs[0], None)?;
    bench.render("k", V2, &kdirs[1], None)?;
    bench.render("k", V2, &kdirs[2], Some(&faults))?;
    bench.render("k", V1, &kdirs[3], Some(&many))?;

    let names = [
        "first deploy to ready",
        "image change to ready",
        "no-op deploy",
        "crash loop: rollout start → failure reported",
        "200 objects: first deploy to ready",
        "200 objects: no-op deploy",
    ];
    let mut rows: Vec<Row> = names
        .iter()
        .map(|name| Row {
            name,
            ..Row::default()
        })
        .collect();
    let (ns_w, ns_h, ns_k) = (
        Bench::namespace("w"),
        Bench::namespace("h"),
        Bench::namespace("k"),
    );
    for run in 0..runs {
        eprintln!("bench deploy: run {}/{runs}", run + 1);
        for namespace in [&ns_w, &ns_h, &ns_k] {
            bench.delete_namespace(namespace, None);
        }
        // wactl
        rows[0].wactl.push(bench.deploy("w", V1, &[])?);
        rows[1].wactl.push(bench.deploy("w", V2, &[])?);
        rows[2].wactl.push(bench.deploy("w", V2, &[])?);
        rows[3].wactl.push(bench.crash_loop_reported(&faults_s)?);
        // Helm
        rows[0].helm.push(ok(
            bench.helm_upgrade(&charts[0], &ns_h, "120s", None)?,
            "helm",
        )?);
        rows[1].helm.push(ok(
            bench.helm_upgrade(&charts[1], &ns_h, "120s", None)?,
            "helm",
        )?);
        rows[2].helm.push(ok(
            bench.helm_upgrade(&charts[1], &ns_h, "120s", None)?,
            "helm",
        )?);
        match bench.helm_upgrade(&charts[2], &ns_h, HELM_TIMEOUT, None)? {
            Err(failed_after) => rows[3].helm.push(failed_after),
            Ok(_) => bail!("helm --wait accepted a crash-looping Deployment"),
        }
        // kubectl
        rows[0]
            .kubectl
            .push(ok(bench.kubectl_apply(&kdirs[0], &ns_k)?, "kubectl")?);
        rows[1]
            .kubectl
            .push(ok(bench.kubectl_apply(&kdirs[1], &ns_k)?, "kubectl")?);
        rows[2]
            .kubectl
            .push(ok(bench.kubectl_apply(&kdirs[1], &ns_k)?, "kubectl")?);
        match bench.kubectl_apply(&kdirs[2], &ns_k)? {
            Err(failed_after) => rows[3].kubectl.push(failed_after),
            Ok(_) => bail!("kubectl rollout status accepted a crash-looping Deployment"),
        }

        // 200 objects, from empty namespaces.
        for namespace in [&ns_w, &ns_h, &ns_k] {
            bench.delete_namespace(namespace, None);
        }
        let many_args = ["--templates", many_s.as_str()];
        rows[4].wactl.push(bench.deploy("w", V1, &many_args)?);
        rows[5].wactl.push(bench.deploy("w", V1, &many_args)?);
        rows[4].helm.push(ok(
            bench.helm_upgrade(&charts[3], &ns_h, "120s", None)?,
            "helm",
        )?);
        rows[5].helm.push(ok(
            bench.helm_upgrade(&charts[3], &ns_h, "120s", None)?,
            "helm",
        )?);
        rows[4]
            .kubectl
            .push(ok(bench.kubectl_apply(&kdirs[3], &ns_k)?, "kubectl")?);
        rows[5]
            .kubectl
            .push(ok(bench.kubectl_apply(&kdirs[3], &ns_k)?, "kubectl")?);
    }
    for namespace in [&ns_w, &ns_h, &ns_k] {
        bench.delete_namespace(namespace, None);
    }

    let mut table = String::from(
        "| measurement | wactl | helm upgrade --install --wait | kubectl apply + rollout status | Helm ÷ wactl | kubectl ÷ wactl |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let (w, h, k) = (median(row.wactl), median(row.helm), median(row.kubectl));
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            row.name,
            ms(w),
            ms(h),
            ms(k),
            ratio(h, w),
            ratio(k, w)
        ));
    }
    let body = format!(
        "Median of {runs} run(s) on the kwok test cluster (`cargo xtask infra up`), debug build of wactl, Helm v3.22.0, \
         3 replicas, the service Deployment and its companion objects ({} in Helm's chart, which leaves the Namespace to \
         `--create-namespace`), each tool in its own namespace. The 200-object release adds ConfigMaps through a template \
         that renders several objects ({many_objects} objects for wactl and kubectl, {} for Helm). \
         Crash loop: wactl's time is its track stage (it reports the crash loop with the pod's events; rollback \
         disabled for the measurement), kubectl's is `rollout status` failing at the 30 s progress deadline, Helm's is \
         `--wait` failing at its `--timeout {HELM_TIMEOUT}` (Helm 3 does not look at the progress deadline). \
         Higher ratios are better for wactl.\n\n{table}",
        counts[0], counts[3]
    );
    println!("{body}");
    crate::bench::write_section(
        "deploy",
        "`cargo xtask bench deploy` — `wactl deploy` vs `helm upgrade --install --wait` vs `kubectl apply` + `kubectl rollout status`.",
        &body,
    )?;
    eprintln!("bench deploy: wrote the `deploy` section of docs/benchmarks.md");
    crate::bench_deploy_fleet::run(runs, &bench, work.path())
}
