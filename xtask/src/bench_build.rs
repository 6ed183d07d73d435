//! `cargo xtask bench build`: `wactl build` against the `docker build` CLI (classic builder)
//! on the same context and Dockerfile, in one run: context upload, full build, and the
//! time to decide that nothing changed.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Build the real service image (rendered `dev` Dockerfile, a full cargo build per
    /// run) instead of a Dockerfile that only copies the context.
    #[arg(long)]
    pub service: bool,
}

/// Both sides tag into a repository of their own, so the bench leaves the service's
/// tags alone.
const IMAGE: &str = "127.0.0.1:5000/wactl-bench/context";

/// One timed build: when the engine had the whole context, and when it was done.
#[derive(Debug, Clone, Copy)]
struct Timing {
    upload: Option<Duration>,
    bytes: Option<u64>,
    total: Duration,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::project::root();
    let runs = args.runs.max(1);
    let wactl = crate::bench::build_wactl("build")?;

    // The Dockerfile both sides build: a template override for wactl, a file for the CLI.
    let scratch = tempfile::tempdir()?;
    let templates = scratch.path().join("templates");
    std::fs::create_dir_all(&templates)?;
    let dockerfile_text = if args.service {
        None
    } else {
        Some(
            "FROM wactl.local/debian:bookworm\nCOPY . /src\nRUN find /src -type f | wc -l\n"
                .to_owned(),
        )
    };
    let dockerfile = scratch.path().join("Dockerfile");
    match &dockerfile_text {
        Some(text) => {
            std::fs::write(templates.join("Dockerfile.tera"), text)?;
            std::fs::write(&dockerfile, text)?;
        }
        None => {
            let out = scratch.path().join("rendered");
            let status = Command::new(&wactl)
                .args(["-q", "render", "dev", "--out"])
                .arg(&out)
                .current_dir(&root)
                .status()?;
            if !status.success() {
                bail!("wactl render dev failed");
            }
            std::fs::copy(out.join("Dockerfile"), &dockerfile)?;
        }
    }
    let templates_arg = dockerfile_text.as_ref().map(|_| templates.as_path());
    let env_dir = bench_environments(&root, scratch.path())?;

    let mut wactl_full = Vec::new();
    let mut cli_full = Vec::new();
    let mut wactl_skip = Vec::new();
    let mut cli_skip = Vec::new();
    for run in 1..=runs {
        eprintln!("bench build: run {run}/{runs}");
        wactl_full.push(wactl_build(&wactl, &root, &env_dir, templates_arg, true)?);
        cli_full.push(cli_build(&root, &dockerfile, true)?);
        wactl_skip.push(wactl_build(&wactl, &root, &env_dir, templates_arg, false)?);
        cli_skip.push(cli_build(&root, &dockerfile, false)?);
    }

    let median = |timings: &[Timing], pick: fn(&Timing) -> Option<Duration>| -> Option<Duration> {
        let mut values: Vec<Duration> = timings.iter().filter_map(pick).collect();
        values.sort();
        values.get(values.len() / 2).copied()
    };
    let upload = |t: &Timing| t.upload;
    let total = |t: &Timing| Some(t.total);
    let rows = [
        (
            "context upload",
            median(&wactl_full, upload),
            median(&cli_full, upload),
        ),
        (
            "full build (no cache)",
            median(&wactl_full, total),
            median(&cli_full, total),
        ),
        (
            "unchanged: decide and finish",
            median(&wactl_skip, total),
            median(&cli_skip, total),
        ),
    ];
    let wactl_bytes = wactl_full.iter().find_map(|t| t.bytes);
    let cli_bytes = cli_full.iter().find_map(|t| t.bytes);

    let what = if args.service {
        "the rendered `dev` Dockerfile (full cargo build of address-service)"
    } else {
        "`FROM wactl.local/debian:bookworm` + `COPY . /src` + `RUN find`"
    };
    let mut report = String::new();
    report.push_str(&format!(
        "Context: this repository with its `.dockerignore`; Dockerfile: {what}. Median of {runs} runs, \
         wactl (debug build) and `DOCKER_BUILDKIT=0 docker build` alternating in one run; \
         lower is better, ratio = wactl / docker CLI.\n\n"
    ));
    report.push_str(
        "wactl's times are of the whole `wactl build` process (a debug binary: load and render \
         the definition, scan and SHA-256 the context, read the git revision, build, tag 3-4 \
         tags); the CLI's are one `docker build`. Unchanged: wactl decides from the content hash \
         and one image lookup, without sending the context; the CLI uploads the context and \
         walks its layer cache.\n\n",
    );
    report.push_str("| measure | wactl | docker CLI | ratio |\n| --- | --- | --- | --- |\n");
    for (name, ours, theirs) in rows {
        report.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            fmt(ours),
            fmt(theirs),
            ratio(ours, theirs)
        ));
    }
    report.push_str(&format!(
        "| context size sent | {} | {} | {} |\n",
        bytes(wactl_bytes),
        bytes(cli_bytes),
        match (wactl_bytes, cli_bytes) {
            (Some(a), Some(b)) if b > 0 => format!("{:.2}", a as f64 / b as f64),
            _ => "n/a".to_owned(),
        }
    ));
    println!("{report}");
    crate::bench::write_section(
        "build",
        "`cargo xtask bench build` — `wactl build` vs `docker build`.",
        &report,
    )?;
    eprintln!("bench build: wrote the `build` section of docs/benchmarks.md");
    Ok(())
}

/// Runs `wactl build dev` with JSON events and reads the `context_sent` event.
fn wactl_build(
    wactl: &Path,
    root: &Path,
    env_dir: &Path,
    templates: Option<&Path>,
    full: bool,
) -> anyhow::Result<Timing> {
    let mut command = Command::new(wactl);
    command
        .arg("--env-dir")
        .arg(env_dir)
        .args(["--output", "json", "build", "dev"]);
    if let Some(dir) = templates {
        command.arg("--templates").arg(dir);
    }
    if full {
        command.args(["--force", "--no-cache"]);
    }
    command
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().context("running wactl")?;
    let stderr = child.stderr.take().context("wactl stderr")?;
    let mut upload = None;
    let mut sent = None;
    let mut last = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["event"] == "context_sent"
        {
            upload = event["seconds"].as_f64().map(Duration::from_secs_f64);
            sent = event["bytes"].as_u64();
        }
        last.push(line);
        if last.len() > 20 {
            last.remove(0);
        }
    }
    let status = child.wait()?;
    let total = started.elapsed();
    if !status.success() {
        bail!("wactl build failed:\n{}", last.join("\n"));
    }
    Ok(Timing {
        upload,
        bytes: sent,
        total,
    })
}

/// The repository's environments with `dev` retargeted at the bench repository.
fn bench_environments(root: &Path, scratch: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = scratch.join("environments");
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(root.join("environments"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
    }
    let dev = std::fs::read_to_string(dir.join("dev.yaml"))?;
    let Some(at) = dev.find("\nimage:\n") else {
        bail!("environments/dev.yaml has no top-level `image:` block");
    };
    let retargeted = format!(
        "{}\nimage:\n  repository: wactl-bench/context\n{}",
        &dev[..at],
        &dev[at + "\nimage:\n".len()..]
    );
    std::fs::write(dir.join("dev.yaml"), retargeted)?;
    Ok(dir)
}

/// Runs the classic-builder CLI; the context is uploaded when the first step is printed.
fn cli_build(root: &Path, dockerfile: &Path, full: bool) -> anyhow::Result<Timing> {
    let mut command = Command::new("docker");
    command
        .arg("build")
        .arg("-f")
        .arg(dockerfile)
        .args(["-t", &format!("{IMAGE}:bench-cli")]);
    if full {
        command.arg("--no-cache");
    }
    command
        .arg(root)
        .env("DOCKER_BUILDKIT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().context("running docker build")?;
    let stdout = child.stdout.take().context("docker stdout")?;
    let mut upload = None;
    let mut size = None;
    let mut last = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if upload.is_none() && line.starts_with("Step 1/") {
            upload = Some(started.elapsed());
        }
        if let Some(rest) = line.strip_prefix("Sending build context to Docker daemon") {
            size = parse_size(rest.trim());
        }
        last.push(line);
        if last.len() > 20 {
            last.remove(0);
        }
    }
    let status = child.wait()?;
    let total = started.elapsed();
    if !status.success() {
        bail!("docker build failed:\n{}", last.join("\n"));
    }
    Ok(Timing {
        upload,
        bytes: size,
        total,
    })
}

/// "2.915MB" (the CLI's decimal units) → bytes.
fn parse_size(text: &str) -> Option<u64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let factor = match unit.trim() {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    Some((number * factor) as u64)
}

fn fmt(d: Option<Duration>) -> String {
    d.map_or("n/a".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()))
}

fn bytes(b: Option<u64>) -> String {
    b.map_or("n/a".to_owned(), |b| format!("{:.2} MB", b as f64 / 1e6))
}

fn ratio(ours: Option<Duration>, theirs: Option<Duration>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if !b.is_zero() => format!("{:.2}", a.as_secs_f64() / b.as_secs_f64()),
        _ => "n/a".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_sizes_are_decimal() {
        assert_eq!(parse_size("2.915MB"), Some(2_915_000));
        assert_eq!(parse_size("512B"), Some(512));
        assert_eq!(parse_size("nonsense"), None);
    }
}
