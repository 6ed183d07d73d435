//! `cargo xtask bench up`: `wactl up` to all-healthy — cold (no volumes), warm (volumes
//! kept, containers gone) and no-change — against Debian's `docker-compose` 1.29 on the same
//! rendered `compose.yaml` and images, in one run.
//!
//! `docker-compose up -d` returns once containers are started (1.29 has no `--wait`), so its
//! time runs until `docker ps` reports every healthcheck healthy, polled every 100 ms.
//! `wactl up` returns once each container's healthcheck command passed (its own run through
//! exec, or Docker's status); for cold and warm the bench also times it until `docker ps`
//! reports every container healthy, the peer's own end point.
//! The service image is the definition's tag (`--no-build`): `bench build` measures builds.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

const SERVICE_IMAGE: &str = "127.0.0.1:5000/world-address/address-service:local";

struct Bench {
    wactl: PathBuf,
    env_dir: PathBuf,
    root: PathBuf,
    project: String,
}

impl Bench {
    fn wactl(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new(&self.wactl)
            .arg("--env-dir")
            .arg(&self.env_dir)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "wactl {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn up(&self) -> anyhow::Result<Duration> {
        let root = self.root.to_string_lossy().into_owned();
        let start = Instant::now();
        self.wactl(&["up", "local", "--no-build", "--no-smoke", "--root", &root])?;
        Ok(start.elapsed())
    }

    /// `up`, and the time from its start until Docker reports every container healthy.
    fn up_until_docker_agrees(&self) -> anyhow::Result<(Duration, Duration)> {
        let start = Instant::now();
        let up = self.up()?;
        let services = std::fs::read_to_string(self.state_dir().join("compose.yaml"))?
            .lines()
            .filter(|l| l.trim() == "healthcheck:")
            .count();
        wait_all_healthy(&self.project, services)?;
        Ok((up, start.elapsed()))
    }

    fn down(&self, volumes: bool) -> anyhow::Result<()> {
        let mut args = vec!["down", "local"];
        if volumes {
            args.push("--volumes");
        }
        self.wactl(&args)
    }

    fn state_dir(&self) -> PathBuf {
        self.root.join(".wactl/local/local")
    }
}

fn compose(dir: &Path, project: &str, args: &[&str]) -> anyhow::Result<()> {
    compose_file(dir, "compose.yaml", project, args)
}

/// `docker-compose -p PROJECT -f FILE ARGS…` in `dir` (relative mounts resolve there).
pub(crate) fn compose_file(
    dir: &Path,
    file: &str,
    project: &str,
    args: &[&str],
) -> anyhow::Result<()> {
    let out = Command::new("docker-compose")
        .args(["-p", project, "-f", file])
        .args(args)
        .current_dir(dir)
        .output()
        .context("running docker-compose")?;
    if !out.status.success() {
        bail!(
            "docker-compose {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Waits until every container of `project` reports healthy (bounded by two minutes).
pub(crate) fn wait_all_healthy(project: &str, services: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = Command::new("docker")
            .args([
                "ps",
                "--filter",
                &format!("label=com.docker.compose.project={project}"),
                "--format",
                "{{.Status}}",
            ])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let healthy = text.lines().filter(|l| l.contains("(healthy)")).count();
        if healthy >= services {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{project}: not all healthy after 120s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn compose_up(dir: &Path, project: &str, services: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    compose(dir, project, &["up", "-d", "--no-build"])?;
    wait_all_healthy(project, services)?;
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A private copy of the `local` definition under `scratch/environments`: its own project,
/// free ports, and (when given) its own image repository, so a bench collides with nothing.
pub(crate) fn local_environments(
    root: &Path,
    scratch: &Path,
    project: &str,
    repository: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let env_dir = scratch.join("environments");
    std::fs::create_dir_all(&env_dir)?;
    std::fs::copy(
        root.join("environments/base.yaml"),
        env_dir.join("base.yaml"),
    )?;
    let ports = format!(
        "ports: {{ address-service: {}, nginx: {}, prometheus: {}, postgres: {}, redis: {} }}",
        free_port()?,
        free_port()?,
        free_port()?,
        free_port()?,
        free_port()?
    );
    let local = std::fs::read_to_string(root.join("environments/local.yaml"))?;
    let Some(ports_line) = local.lines().find(|l| l.trim_start().starts_with("ports:")) else {
        bail!("environments/local.yaml has no local.ports line");
    };
    let mut local = local
        .replace("project: world-address", &format!("project: {project}"))
        .replace(ports_line.trim_start(), &ports);
    if let Some(repository) = repository {
        let Some(at) = local.find("\nimage:\n") else {
            bail!("environments/local.yaml has no top-level `image:` block");
        };
        local.insert_str(
            at + "\nimage:\n".len(),
            &format!("  repository: {repository}\n"),
        );
    }
    std::fs::write(env_dir.join("local.yaml"), local)?;
    Ok(env_dir)
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::project::root();
    let runs = args.runs.max(1);
    let wactl = crate::bench::build_wactl_release("up")?;
    let image = Command::new("docker")
        .args(["image", "inspect", SERVICE_IMAGE])
        .output()?;
    if !image.status.success() {
        bail!(
            "{SERVICE_IMAGE} is not in the engine: run `wactl build local` (or the local-stack \
             tests, which tag it) first"
        );
    }

    let scratch = tempfile::tempdir()?;
    let load_before = crate::bench::load_average();
    let project = format!("wactl-bench-{}", std::process::id());
    let env_dir = local_environments(&root, scratch.path(), &project, None)?;
    let bench = Bench {
        wactl,
        env_dir,
        root: scratch.path().to_path_buf(),
        project: project.clone(),
    };

    let (mut cold, mut warm, mut nochange) = (vec![], vec![], vec![]);
    let (mut cold_docker, mut warm_docker) = (vec![], vec![]);
    let (mut c_cold, mut c_warm, mut c_nochange) = (vec![], vec![], vec![]);
    let compose_project = format!("{project}-compose");
    let result = (|| -> anyhow::Result<()> {
        for run in 1..=runs {
            eprintln!("bench up: run {run}/{runs}: wactl");
            bench.down(true)?;
            let (up, docker) = bench.up_until_docker_agrees()?;
            cold.push(up);
            cold_docker.push(docker);
            nochange.push(bench.up()?);
            bench.down(false)?;
            let (up, docker) = bench.up_until_docker_agrees()?;
            warm.push(up);
            warm_docker.push(docker);
            bench.down(true)?;

            eprintln!("bench up: run {run}/{runs}: docker-compose");
            let dir = bench.state_dir();
            let services = std::fs::read_to_string(dir.join("compose.yaml"))?
                .lines()
                .filter(|l| l.trim() == "healthcheck:")
                .count();
            compose(&dir, &compose_project, &["down", "--volumes"])?;
            c_cold.push(compose_up(&dir, &compose_project, services)?);
            c_nochange.push(compose_up(&dir, &compose_project, services)?);
            compose(&dir, &compose_project, &["down"])?;
            c_warm.push(compose_up(&dir, &compose_project, services)?);
            compose(&dir, &compose_project, &["down", "--volumes"])?;
        }
        Ok(())
    })();
    let _ = bench.down(true);
    let _ = compose(&bench.state_dir(), &compose_project, &["down", "--volumes"]);
    result?;

    let row = |name: &str, ours: Vec<Duration>, theirs: &[Duration]| {
        let theirs = theirs.to_vec();
        let (o, t) = (median(ours), median(theirs));
        format!(
            "| {name} | {:.2} s | {:.2} s | {:.2} |",
            o.as_secs_f64(),
            t.as_secs_f64(),
            o.as_secs_f64() / t.as_secs_f64().max(f64::EPSILON)
        )
    };
    let report = [
        format!(
            "Median of {runs} run(s), wactl (release build) and docker-compose alternating, local stack of `environments/local.yaml` (postgres, redis, \
             address-service, nginx, prometheus), images from `cargo xtask infra images`. \
             docker-compose 1.29.2 runs the same rendered `compose.yaml`; its `up -d` does not \
             wait, so its time includes polling `docker ps` every 100 ms until Docker reports \
             every healthcheck healthy. `wactl up` returns when every service's healthcheck \
             command has passed once, run by wactl through the Engine's exec every 200 ms \
             (or Docker said healthy first), starting each dependent as soon as its \
             dependencies passed; Docker 20.10 runs its own first probe one `interval` (5 s) \
             after a start, so its status still says `starting` then. The rows marked \
             \"Docker agrees\" time the same wactl run until `docker ps` reports every container \
             healthy, the peer's own end point. {}\n",
            crate::bench_build::load_note(load_before, crate::bench::load_average())
        ),
        "| measurement | wactl up | docker-compose | ratio (wactl / compose) |".to_owned(),
        "| --- | --- | --- | --- |".to_owned(),
        row("cold (no containers, no volumes)", cold, &c_cold),
        row(
            "cold, until Docker agrees every container is healthy",
            cold_docker,
            &c_cold,
        ),
        row("warm (volumes kept, containers removed)", warm, &c_warm),
        row(
            "warm, until Docker agrees every container is healthy",
            warm_docker,
            &c_warm,
        ),
        row("no change (everything running)", nochange, &c_nochange),
    ]
    .join("\n");
    println!("{report}");
    crate::bench::write_section(
        "up",
        "`cargo xtask bench up` — `wactl up` vs `docker-compose up`.",
        &report,
    )?;
    eprintln!("bench up: wrote the `up` section of docs/benchmarks.md");
    Ok(())
}
