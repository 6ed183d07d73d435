//! `cargo xtask bench watch`: edit-to-healthy of `wactl up --watch` against the loop a
//! docker-compose user runs by hand (`docker build`, `docker-compose up -d` of the service,
//! polling its health), on the same local stack, context and rendered Dockerfile, in one run.
//!
//! Each side starts from a running stack whose image was built from the same context, so
//! the dependency layer is cached; each timed cycle appends one comment line to
//! `address-service/src` and runs until the service's new container is healthy (wactl: its
//! cycle line; the peer: `docker ps` polled every 100 ms). Each edit carries a mark of its
//! own, so every cycle compiles the service (a repeated line would be a layer-cache hit).

use crate::bench_build::{build_args, cli_build, copy_checkout, edit_one_line, load_note};
use crate::bench_up::{compose_file, local_environments, wait_all_healthy};
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Timed edit cycles per side (the median is reported).
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
}

/// The peer's image, in a repository of the bench's own.
const PEER_IMAGE: &str = "127.0.0.1:5000/wactl-bench/watch:peer";
/// How long a first build (the service compiled once) or a cycle may take.
const BUILD_LIMIT: Duration = Duration::from_secs(40 * 60);

/// One `wactl up --watch` cycle: the bench's wall time from the edit to the cycle's line,
/// and the timings wactl printed (from the change it saw).
#[derive(Debug, Clone, Copy)]
struct Cycle {
    wall: Duration,
    built: f64,
    healthy: f64,
    smoke: Option<f64>,
}

/// One peer cycle: edit to built, and edit to the new container healthy.
#[derive(Debug, Clone, Copy)]
struct PeerCycle {
    built: Duration,
    healthy: Duration,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::project::root();
    let runs = args.runs.max(1);
    let wactl = crate::bench::build_wactl_release("watch")?;
    let scratch = tempfile::tempdir()?;
    let project = format!("wactl-bench-watch-{}", std::process::id());
    let env_dir = local_environments(&root, scratch.path(), &project, Some("wactl-bench/watch"))?;
    let context = scratch.path().join("context");
    copy_checkout(&root, &context)?;
    let load_before = crate::bench::load_average();

    let wactl_down = || {
        let _ = Command::new(&wactl)
            .arg("--env-dir")
            .arg(&env_dir)
            .args(["-q", "down", "local", "--volumes"])
            .status();
    };
    let peer_project = format!("{project}-compose");
    let state_dir = context.join(".wactl/local/local");
    let result = (|| -> anyhow::Result<(Vec<Cycle>, Vec<PeerCycle>)> {
        let ours = wactl_cycles(&wactl, &env_dir, &context, runs)?;
        wactl_down();
        let theirs = peer_cycles(&wactl, &env_dir, &context, &state_dir, &peer_project, runs)?;
        Ok((ours, theirs))
    })();
    wactl_down();
    let _ = compose_file(
        &state_dir,
        "peer.yaml",
        &peer_project,
        &["down", "--volumes"],
    );
    let (ours, theirs) = result?;
    let load_after = crate::bench::load_average();

    let median = |mut v: Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let wall = median(ours.iter().map(|c| c.wall.as_secs_f64()).collect());
    let built = median(ours.iter().map(|c| c.built).collect());
    let healthy = median(ours.iter().map(|c| c.healthy).collect());
    let smoke: Vec<f64> = ours.iter().filter_map(|c| c.smoke).collect();
    let smoke = (!smoke.is_empty()).then(|| median(smoke));
    let peer_built = median(theirs.iter().map(|c| c.built.as_secs_f64()).collect());
    let peer_healthy = median(theirs.iter().map(|c| c.healthy.as_secs_f64()).collect());
    // The replace step of each cycle, then the median (not the difference of medians).
    let replace = median(ours.iter().map(|c| c.healthy - c.built).collect());
    let peer_replace = median(
        theirs
            .iter()
            .map(|c| (c.healthy - c.built).as_secs_f64())
            .collect(),
    );
    let report = format!(
        "Median of {runs} edit cycle(s) per side, wactl (release build) first, on the local stack \
         of `environments/local.yaml` with the dependency layer cached: each cycle appends a \
         comment line to `address-service/src/api.rs` in a copy of this checkout. wactl: `wactl \
         up --watch` (debounce 300 ms) builds, tries the new container beside the serving one, \
         replaces it, waits for health and reruns the smoke suite; \"healthy\" is the first pass \
         of the service's healthcheck command, which wactl runs itself through the Engine's \
         exec every 200 ms in the candidate and again in its replacement (Docker 20.10 probes \
         first one `interval`, 5 s, after a start); its times are the ones it \
         prints (from the change it saw), and the bench's own clock from the write to that line. \
         Peer: `DOCKER_BUILDKIT=0 docker build` of the same rendered Dockerfile, then \
         `docker-compose up -d --no-deps --force-recreate address-service` (1.29.2, same rendered \
         `compose.yaml`, image retagged), then `docker ps` every 100 ms until healthy; no \
         smoke. {}\n\n\
         | edit → | wactl up --watch | build + docker-compose up -d | ratio (wactl / peer) |\n\
         | --- | --- | --- | --- |\n\
         | image built (a real compile: each edit carries a unique mark) | {built:.1} s | {peer_built:.1} s | {:.2} |\n\
         | built → new container healthy (replace step) | {replace:.1} s | {peer_replace:.1} s | {:.2} |\n\
         | new container healthy | {healthy:.1} s (bench clock {wall:.1} s) | {peer_healthy:.1} s | {:.2} |\n\
         | smoke passed | {} | n/a | |\n",
        load_note(load_before, load_after),
        built / peer_built,
        replace / peer_replace,
        healthy / peer_healthy,
        smoke.map_or("n/a".to_owned(), |s| format!("{s:.1} s")),
    );
    println!("{report}");
    crate::bench::write_section(
        "watch",
        "`cargo xtask bench watch` — edit-to-healthy of `wactl up --watch` vs `docker build` + \
         `docker-compose up -d`.",
        &report,
    )?;
    eprintln!("bench watch: wrote the `watch` section of docs/benchmarks.md");
    Ok(())
}

/// A mark no earlier edit carried (this process, this instant): an edit that repeated an
/// earlier bench's line would give a context the engine's layer cache already holds, and
/// the cycle would measure no compile.
fn unique_mark() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// Starts `wactl up --watch`, waits for it to watch, then times `runs` edits.
fn wactl_cycles(
    wactl: &Path,
    env_dir: &Path,
    context: &Path,
    runs: usize,
) -> anyhow::Result<Vec<Cycle>> {
    eprintln!("bench watch: wactl up --watch (first build and up)");
    let mut child = Command::new(wactl)
        .arg("--env-dir")
        .arg(env_dir)
        .args(["--no-color", "up", "local", "--watch", "--root"])
        .arg(context)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting wactl up --watch")?;
    let stderr = child.stderr.take().context("wactl stderr")?;
    let (tx, lines) = mpsc::channel::<(Instant, String)>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let result = (|| -> anyhow::Result<Vec<Cycle>> {
        let mut last = Vec::new();
        wait_line(&lines, &mut last, |l| l.starts_with("watching "))?;
        let mut cycles = Vec::new();
        for run in 1..=runs {
            // The log streams of a fresh container settle first.
            std::thread::sleep(Duration::from_secs(2));
            eprintln!("bench watch: wactl cycle {run}/{runs}");
            edit_one_line(context, &format!("watch, wactl {run}, {}", unique_mark()))?;
            let edited = Instant::now();
            let prefix = format!("cycle {run}");
            let (at, line) = wait_line(&lines, &mut last, |l| {
                let l = l.trim_start_matches("✓ ");
                l.starts_with(&format!("{prefix}:")) && l.contains("change seen")
                    || l.starts_with(&format!("{prefix} failed"))
            })?;
            let Some(cycle) = parse_cycle(&line, at.duration_since(edited)) else {
                bail!("wactl up --watch: {line}\n{}", last.join("\n"));
            };
            cycles.push(cycle);
        }
        Ok(cycles)
    })();
    stop(&mut child);
    drop(lines);
    let _ = reader.join();
    result
}

/// Waits (bounded) for a line that `wanted` accepts, keeping the last lines for errors.
fn wait_line(
    lines: &mpsc::Receiver<(Instant, String)>,
    last: &mut Vec<String>,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<(Instant, String)> {
    let deadline = Instant::now() + BUILD_LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, line) = match lines.recv_timeout(left) {
            Ok(got) => got,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!(
                    "wactl up --watch: nothing after {BUILD_LIMIT:?}:\n{}",
                    last.join("\n")
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("wactl up --watch exited:\n{}", last.join("\n"))
            }
        };
        last.push(line.clone());
        if last.len() > 30 {
            last.remove(0);
        }
        if wanted(&line) {
            return Ok((at, line));
        }
    }
}

/// `✓ cycle 1: replaced address-service; change seen → built 81.2s → healthy 92.0s →
/// smoke passed 92.4s` → the timings; `None` for a failed cycle.
fn parse_cycle(line: &str, wall: Duration) -> Option<Cycle> {
    let seconds = |label: &str| -> Option<f64> {
        let at = line.find(label)? + label.len();
        let rest = line[at..].trim_start();
        let end = rest.find('s')?;
        rest[..end].parse().ok()
    };
    Some(Cycle {
        wall,
        built: seconds("built ")?,
        healthy: seconds("healthy ")?,
        smoke: seconds("smoke passed "),
    })
}

/// SIGINT (wactl finishes its cycle and stops), then a bounded wait, then SIGKILL.
fn stop(child: &mut std::process::Child) {
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The peer's stack from the compose file wactl rendered (address-service retagged), then
/// `runs` timed edits: build, `up -d` of the service, health polled.
fn peer_cycles(
    wactl: &Path,
    env_dir: &Path,
    context: &Path,
    state_dir: &Path,
    project: &str,
    runs: usize,
) -> anyhow::Result<Vec<PeerCycle>> {
    let rendered = context.join(".wactl/bench-watch-rendered");
    let status = Command::new(wactl)
        .arg("--env-dir")
        .arg(env_dir)
        .args(["-q", "render", "local", "--out"])
        .arg(&rendered)
        .status()?;
    if !status.success() {
        bail!("wactl render local failed");
    }
    let dockerfile = rendered.join("Dockerfile");
    let args = build_args(env_dir, "local")?;
    let compose = std::fs::read_to_string(state_dir.join("compose.yaml"))
        .context("the compose.yaml wactl up wrote")?;
    let peer = retag_service(&compose, "address-service", PEER_IMAGE)?;
    std::fs::write(state_dir.join("peer.yaml"), &peer)?;
    let services = peer.lines().filter(|l| l.trim() == "healthcheck:").count();

    eprintln!("bench watch: peer: first build and docker-compose up");
    cli_build(context, &dockerfile, PEER_IMAGE, &args, false)?;
    compose_file(state_dir, "peer.yaml", project, &["up", "-d", "--no-build"])?;
    wait_all_healthy(project, services)?;
    let mut cycles = Vec::new();
    for run in 1..=runs {
        eprintln!("bench watch: peer cycle {run}/{runs}");
        let before = service_containers(project, "address-service")?;
        edit_one_line(context, &format!("watch, peer {run}, {}", unique_mark()))?;
        let edited = Instant::now();
        cli_build(context, &dockerfile, PEER_IMAGE, &args, false)?;
        let built = edited.elapsed();
        compose_file(
            state_dir,
            "peer.yaml",
            project,
            // 1.29 keeps the container when only the image behind the tag changed.
            &[
                "up",
                "-d",
                "--no-build",
                "--no-deps",
                "--force-recreate",
                "address-service",
            ],
        )?;
        wait_service_healthy(project, "address-service", &before)?;
        cycles.push(PeerCycle {
            built,
            healthy: edited.elapsed(),
        });
    }
    Ok(cycles)
}

/// `compose` with `service`'s `image:` replaced by `image`.
fn retag_service(compose: &str, service: &str, image: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut inside = false;
    let mut replaced = 0;
    for line in compose.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") {
            inside = line.trim_end() == format!("  {service}:");
        }
        if inside && line.trim_start().starts_with("image:") {
            out.push_str(&format!("    image: \"{image}\"\n"));
            replaced += 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if replaced != 1 {
        bail!("compose.yaml: {replaced} image lines for {service}, expected 1");
    }
    Ok(out)
}

/// `ID STATUS` of the service's containers.
fn service_containers(project: &str, service: &str) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.ID}} {{.Status}}",
        ])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls until the service has exactly one container, not one of `before` (compose
/// recreated it), and it reports healthy.
fn wait_service_healthy(project: &str, service: &str, before: &str) -> anyhow::Result<()> {
    let old: Vec<&str> = before.lines().filter_map(|l| l.split(' ').next()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = service_containers(project, service)?;
        let mut lines = text.lines();
        if let (Some(line), None) = (lines.next(), lines.next())
            && let Some((id, status)) = line.split_once(' ')
            && !old.contains(&id)
            && status.contains("(healthy)")
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{project}/{service}: no new healthy container after 120 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_lines_give_their_timings() {
        let line = "✓ cycle 1: replaced address-service; change seen → built 81.2s → healthy 92.0s → smoke passed 92.4s";
        let cycle = parse_cycle(line, Duration::from_secs(93)).expect("a cycle");
        assert_eq!(
            (cycle.built, cycle.healthy, cycle.smoke),
            (81.2, 92.0, Some(92.4))
        );
        let no_smoke = "✓ cycle 2: nothing replaced; change seen → built 1.0s → healthy 2.5s";
        assert_eq!(
            parse_cycle(no_smoke, Duration::ZERO).map(|c| c.smoke),
            Some(None)
        );
        assert!(parse_cycle("cycle 3 failed at build: boom", Duration::ZERO).is_none());
    }

    #[test]
    fn only_the_named_service_is_retagged() {
        let compose = "services:\n  address-service:\n    image: \"a:1\"\n    ports: []\n  nginx:\n    image: \"n:1\"\n";
        let out = retag_service(compose, "address-service", "p:2").expect("retagged");
        assert!(out.contains("    image: \"p:2\"\n    ports"), "{out}");
        assert!(out.contains("    image: \"n:1\""), "{out}");
        assert!(retag_service(compose, "redis", "p:2").is_err());
    }
}
