//! `cargo xtask bench rolling`: does a rolling update on the real node drop requests?
//!
//! `dev-real` (3 replicas on `real-node-0`, `cargo xtask infra up --real-node`) serves a
//! steady stream of validate requests through its NodePort on 127.0.0.1 while `wactl deploy`
//! rolls out a new image, and again while `kubectl rollout restart` replaces the pods, as the
//! reference. Every request opens its own connection, so each one is routed by kube-proxy's
//! current rules and a pod that stops accepting connections too early shows up as an error.

use crate::bench::{build_wactl, write_section};
use crate::{infra, project};
use anyhow::{Context, bail, ensure};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per second the load generator aims at (spread over its workers).
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Rollouts of each kind (the table shows each one).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

const ENVIRONMENT: &str = "dev-real";
const NAMESPACE: &str = "world-address-dev-real";
const NODE_PORT: &str = "127.0.0.1:30080";
const REPOSITORY: &str = "127.0.0.1:5000/world-address/address-service";
const WORKERS: u32 = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const BODY: &str = r#"{"country_code":"DE","city":"Berlin","postal_code":"10117","street_address":"Unter den Linden 77"}"#;

/// One request's fate: when it started, how long it took, and whether it succeeded.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    latency: Duration,
    ok: bool,
}

/// What the load generator saw during one rollout.
#[derive(Debug)]
struct Window {
    what: String,
    duration: Duration,
    sent: usize,
    failed: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// The first few failures, as the generator saw them.
    errors: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    ensure!(args.rate > 0, "--rate must be at least 1");
    infra::up(&infra::UpOptions {
        images: true,
        real_node: true,
        second_cluster: false,
    })?;
    let wactl = build_wactl("rolling")?;
    let env_vars = infra::env_vars()?;
    let kubectl = Kubectl::of_infra(&env_vars)?;
    let wactl_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&wactl);
        cmd.current_dir(project::root())
            .arg("--no-color")
            .args(args)
            .env_remove("CI")
            .envs(env_vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    };

    // The image dev-real runs; without one, a deploy that builds the current source first.
    let base = match live_image(&kubectl) {
        Ok(image) => image,
        Err(_) => {
            eprintln!("bench rolling: wactl deploy {ENVIRONMENT} (build, push, roll out; untimed)");
            checked(wactl_cmd(&["deploy", ENVIRONMENT, "--yes"]), "wactl deploy")?;
            live_image(&kubectl)?
        }
    };
    wait_answers()?;

    let mut windows = Vec::new();
    for run in 0..args.runs {
        // A new image: the deployed one plus a label, so its digest differs.
        let image = labelled_image(&base, run)?;
        let deploy = measure(
            args.rate,
            &format!("wactl deploy (new image, run {})", run + 1),
            || {
                checked(
                    wactl_cmd(&[
                        "deploy",
                        ENVIRONMENT,
                        "--yes",
                        "--skip-build",
                        "--image",
                        &image,
                    ]),
                    "wactl deploy",
                )
                .map(drop)
            },
        )?;
        eprintln!("bench rolling: {deploy:?}");
        windows.push(deploy);
        let restart = measure(
            args.rate,
            &format!("kubectl rollout restart (run {})", run + 1),
            || {
                let mut restart = kubectl.command();
                restart.args([
                    "-n",
                    NAMESPACE,
                    "rollout",
                    "restart",
                    "deployment/address-service",
                ]);
                checked(restart, "kubectl rollout restart")?;
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
            },
        )?;
        eprintln!("bench rolling: {restart:?}");
        windows.push(restart);
    }
    // Leave dev-real on the image it ran before.
    checked(
        wactl_cmd(&[
            "deploy",
            ENVIRONMENT,
            "--yes",
            "--skip-build",
            "--image",
            &base,
        ]),
        "wactl deploy (back to the built image)",
    )?;
    write_section(
        "rolling",
        &intro(args.rate),
        &table(&windows, &load_average()),
    )?;
    eprintln!("bench rolling: results in docs/benchmarks.md");
    let failed: usize = windows.iter().map(|w| w.failed).sum();
    if failed > 0 {
        eprintln!("bench rolling: {failed} failed requests; first errors:");
        for window in &windows {
            for error in &window.errors {
                eprintln!("  {}: {error}", window.what);
            }
        }
    }
    Ok(())
}

fn intro(rate: u32) -> String {
    format!(
        "`cargo xtask bench rolling`: `dev-real` (3 replicas on the real node `real-node-0`, \
         maxSurge 1, maxUnavailable 0, preStop sleep 5 s, the service's graceful shutdown) \
         under a steady load of {rate} validate requests/s (POST `/v1/addresses/validate`, \
         {WORKERS} workers, a new connection per request, 5 s timeout) through the NodePort \
         `{NODE_PORT}`, during `wactl deploy` of a new image (the built one plus a label) and \
         during `kubectl rollout restart` + `rollout status` as the reference. The window is \
         the command's run time; failed = connection errors, timeouts and non-2xx answers. \
         One machine, 2 CPUs shared with other work."
    )
}

fn table(windows: &[Window], load: &str) -> String {
    let mut out = String::from(
        "| rollout | window (s) | requests sent | failed | p50 (ms) | p99 (ms) | max (ms) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for w in windows {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {} | {:.1} | {:.1} | {:.1} |\n",
            w.what,
            w.duration.as_secs_f64(),
            w.sent,
            w.failed,
            ms(w.p50),
            ms(w.p99),
            ms(w.max)
        ));
    }
    let errors: Vec<String> = windows
        .iter()
        .flat_map(|w| w.errors.iter().map(move |e| format!("- {}: {e}", w.what)))
        .collect();
    if !errors.is_empty() {
        out.push_str("\nFirst failures:\n\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    out.push_str(&format!("\nLoad average when the run ended: {load}.\n"));
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `rollout` while the load generator runs, and summarises the requests started
/// between its start and its end.
fn measure(
    rate: u32,
    what: &str,
    rollout: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Window> {
    let stop = Arc::new(AtomicBool::new(false));
    let addr: SocketAddr = NODE_PORT.parse()?;
    let interval = Duration::from_secs_f64(f64::from(WORKERS) / f64::from(rate));
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                // Stagger the workers so the requests spread evenly over each interval.
                std::thread::sleep(interval * i / WORKERS);
                let mut samples = Vec::new();
                let mut errors = Vec::new();
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    let result = validate(addr);
                    samples.push(Sample {
                        at,
                        latency: at.elapsed(),
                        ok: result.is_ok(),
                    });
                    if let Err(e) = result
                        && errors.len() < 200
                    {
                        errors.push((at, format!("{e:#}")));
                    }
                    next += interval;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    } else {
                        next = Instant::now();
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    // Let the load settle before the rollout starts.
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let outcome = rollout();
    let duration = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    for worker in workers {
        let (s, e) = worker
            .join()
            .map_err(|_| anyhow::anyhow!("load worker panicked"))?;
        samples.extend(s);
        errors.extend(e);
    }
    outcome.with_context(|| format!("{what} failed"))?;
    let end = started + duration;
    let mut inside: Vec<Sample> = samples
        .into_iter()
        .filter(|s| s.at >= started && s.at <= end)
        .collect();
    ensure!(!inside.is_empty(), "no request was sent during {what}");
    inside.sort_by_key(|s| s.latency);
    let pick = |q: f64| {
        let index = ((inside.len() as f64 * q).ceil() as usize).clamp(1, inside.len()) - 1;
        inside[index].latency
    };
    let mut errors: Vec<String> = errors
        .into_iter()
        .filter(|(at, _)| *at >= started && *at <= end)
        .map(|(_, e)| e)
        .collect();
    errors.truncate(5);
    Ok(Window {
        what: what.to_owned(),
        duration,
        sent: inside.len(),
        failed: inside.iter().filter(|s| !s.ok).count(),
        p50: pick(0.50),
        p99: pick(0.99),
        max: inside.last().map_or(Duration::ZERO, |s| s.latency),
        errors,
    })
}

/// One validate request on a fresh connection; Ok only for a 2xx answer.
pub(crate) fn validate(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).context("connect")?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let request = format!(
        "POST /v1/addresses/validate HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    stream.write_all(request.as_bytes()).context("send")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).context("read")?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("no HTTP status in {head:?}"))?;
    ensure!((200..300).contains(&status), "HTTP {status}");
    Ok(())
}

/// Waits until the NodePort answers validate requests (kube-proxy may lag the rollout).
fn wait_answers() -> anyhow::Result<()> {
    let addr: SocketAddr = NODE_PORT.parse()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match validate(addr) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                bail!("{NODE_PORT} does not answer validate requests: {e:#}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// The pinned kubectl, on the infra cluster.
pub(crate) struct Kubectl {
    pub(crate) program: PathBuf,
    pub(crate) kubeconfig: String,
}

impl Kubectl {
    /// kubectl with the kubeconfig of `cargo xtask infra up`.
    pub(crate) fn of_infra(env_vars: &[(String, String)]) -> anyhow::Result<Self> {
        let kubeconfig = env_vars
            .iter()
            .find(|(k, _)| k == "KUBECONFIG")
            .map(|(_, v)| v.clone())
            .context("infra env has no KUBECONFIG")?;
        Ok(Self {
            program: infra::kubectl()?,
            kubeconfig,
        })
    }

    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }
}

/// The Deployment's current image.
fn live_image(kubectl: &Kubectl) -> anyhow::Result<String> {
    let mut cmd = kubectl.command();
    cmd.args([
        "-n",
        NAMESPACE,
        "get",
        "deployment/address-service",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    let image = String::from_utf8(checked(cmd, "kubectl get deployment")?.stdout)?;
    ensure!(!image.trim().is_empty(), "the Deployment has no image");
    Ok(image.trim().to_owned())
}

/// `base` plus a label, built with the Docker CLI and pushed; returns its reference.
fn labelled_image(base: &str, run: usize) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {base}\nLABEL dev.wactl.bench-rolling=\"{run}-{}\"\n",
            std::process::id()
        ),
    )?;
    let tag = format!("{REPOSITORY}:bench-rolling-{run}");
    let mut pull = Command::new("docker");
    pull.args(["pull", "--quiet", base]);
    checked(pull, "docker pull")?;
    let mut build = Command::new("docker");
    build
        .args(["build", "--quiet", "--tag", &tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0");
    checked(build, "docker build")?;
    let mut push = Command::new("docker");
    push.args(["push", "--quiet", &tag]);
    checked(push, "docker push")?;
    Ok(tag)
}

pub(crate) fn checked(mut cmd: Command, what: &str) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
