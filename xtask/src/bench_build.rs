//! `cargo xtask bench build`: `wactl build` (release binary) against the `docker build` CLI
//! (classic builder) on the same context and Dockerfile, in one run: context upload, full
//! build, and the time to decide that nothing changed; with `--service`, the service image:
//! one cold build, then a one-line change in `address-service/src` rebuilt by each side.

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
    /// Build the real service image (rendered `dev` Dockerfile): one cold build by wactl,
    /// then `--runs` one-line changes in `address-service/src`, each rebuilt by wactl and by
    /// the CLI, instead of a Dockerfile that only copies the context.
    #[arg(long)]
    pub service: bool,
    /// With `--service`: also time a cold build by the CLI (minutes more).
    #[arg(long, requires = "service")]
    pub peer_cold: bool,
}

/// The file the service case changes, one line per build.
const EDITED: &str = "address-service/src/api.rs";

/// Both sides tag into a repository of their own, so the bench leaves the service's
/// tags alone.
const IMAGE: &str = "127.0.0.1:5000/wactl-bench/context";

/// One timed build: when the engine had the whole context, and when it was done.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    upload: Option<Duration>,
    bytes: Option<u64>,
    pub(crate) total: Duration,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::project::root();
    let runs = args.runs.max(1);
    let wactl = crate::bench::build_wactl_release("build")?;
    if args.service {
        return run_service(&wactl, &root, runs, args.peer_cold);
    }

    // The Dockerfile both sides build: a template override for wactl, a file for the CLI.
    let scratch = tempfile::tempdir()?;
    let templates = scratch.path().join("templates");
    std::fs::create_dir_all(&templates)?;
    let text = "FROM wactl.local/debian:bookworm\nCOPY . /src\nRUN find /src -type f | wc -l\n";
    let dockerfile = scratch.path().join("Dockerfile");
    std::fs::write(templates.join("Dockerfile.tera"), text)?;
    std::fs::write(&dockerfile, text)?;
    // The image wactl builds carries five OCI labels, one LABEL instruction it appends to
    // the Dockerfile it sends; the CLI builds that same Dockerfile too, for the same image.
    let labelled = scratch.path().join("Dockerfile.labelled");
    std::fs::write(&labelled, format!("{text}{SAME_LABELS}\n"))?;
    let templates_arg = Some(templates.as_path());
    let env_dir = bench_environments(&root, scratch.path())?;
    let load_before = crate::bench::load_average();
    let cli_tag = cli_tag();

    let mut wactl_full = Vec::new();
    let mut cli_full = Vec::new();
    let mut cli_labelled = Vec::new();
    let mut wactl_skip = Vec::new();
    let mut cli_skip = Vec::new();
    for run in 1..=runs {
        eprintln!("bench build: run {run}/{runs}");
        wactl_full.push(wactl_build(&wactl, &root, &env_dir, templates_arg, true)?);
        cli_full.push(cli_build(&root, &dockerfile, &cli_tag, &[], true)?);
        cli_labelled.push(cli_build(&root, &labelled, &cli_tag, &[], true)?);
        wactl_skip.push(wactl_build(&wactl, &root, &env_dir, templates_arg, false)?);
        cli_skip.push(cli_build(&root, &dockerfile, &cli_tag, &[], false)?);
    }
    let load_after = crate::bench::load_average();

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
            "full build, the CLI also labelling its image (same Dockerfile as wactl sends)",
            median(&wactl_full, total),
            median(&cli_labelled, total),
        ),
        (
            "unchanged: decide and finish",
            median(&wactl_skip, total),
            median(&cli_skip, total),
        ),
    ];
    let wactl_bytes = wactl_full.iter().find_map(|t| t.bytes);
    let cli_bytes = cli_full.iter().find_map(|t| t.bytes);

    let what = "`FROM wactl.local/debian:bookworm` + `COPY . /src` + `RUN find`";
    let mut report = String::new();
    report.push_str(&format!(
        "Context: this repository with its `.dockerignore`; Dockerfile: {what}. Median of {runs} runs, \
         wactl (release build) and `DOCKER_BUILDKIT=0 docker build` alternating in one run; \
         lower is better, ratio = wactl / docker CLI. {}\n\n",
        load_note(load_before, load_after)
    ));
    report.push_str(
        "wactl's times are of the whole `wactl build` process (load the definition and render its Dockerfile, \
         scan and SHA-256 the context while git reads the revision, build, tag 3-4 tags); the \
         CLI's are one `docker build`. wactl's image carries five OCI labels, as one LABEL \
         instruction appended to the Dockerfile it sends (one more step than the CLI's build; the \
         second full-build row has the CLI build that same Dockerfile, LABEL line included). \
         Unchanged: wactl decides from the content hash and one image lookup, without sending \
         the context; the CLI uploads the context and walks its layer cache.\n\n",
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

/// The service image: one cold build by wactl (and by the CLI with `peer_cold`), then
/// `runs` one-line changes to [`EDITED`], each rebuilt by wactl and then by the CLI on the
/// same rendered Dockerfile and build arguments, so both reuse the dependency layer.
fn run_service(wactl: &Path, root: &Path, runs: usize, peer_cold: bool) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let env_dir = bench_environments(root, scratch.path())?;
    // A copy of the checkout, so the edits never touch the working tree.
    let context = scratch.path().join("context");
    copy_checkout(root, &context)?;
    let out = scratch.path().join("rendered");
    let status = Command::new(wactl)
        .arg("--env-dir")
        .arg(&env_dir)
        .args(["-q", "render", "dev", "--out"])
        .arg(&out)
        .status()?;
    if !status.success() {
        bail!("wactl render dev failed");
    }
    let dockerfile = scratch.path().join("Dockerfile");
    std::fs::copy(out.join("Dockerfile"), &dockerfile)?;
    let build_args = build_args(&env_dir, "dev")?;
    let cli_tag = cli_tag();

    let load = |what: &str| {
        let load = crate::bench::load_average();
        eprintln!("bench build --service: {what} (load average {load:?})");
        load
    };
    let mut loads = Vec::new();
    loads.push(load("cold build by wactl"));
    let cold = wactl_build(wactl, &context, &env_dir, None, true)?.total;
    eprintln!(
        "bench build --service: wactl cold {:.1} s",
        cold.as_secs_f64()
    );
    let cli_cold = if peer_cold {
        loads.push(load("cold build by the CLI"));
        Some(cli_build(&context, &dockerfile, &cli_tag, &build_args, true)?.total)
    } else {
        None
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        edit_one_line(&context, &format!("wactl {run}"))?;
        loads.push(load(&format!("run {run}/{runs}: one-line change, wactl")));
        ours.push(wactl_build(wactl, &context, &env_dir, None, false)?);
        edit_one_line(&context, &format!("docker CLI {run}"))?;
        loads.push(load(&format!(
            "run {run}/{runs}: one-line change, docker CLI"
        )));
        theirs.push(cli_build(
            &context,
            &dockerfile,
            &cli_tag,
            &build_args,
            false,
        )?);
    }
    loads.push(crate::bench::load_average());
    let median = |timings: &[Timing]| -> Option<Duration> {
        let mut values: Vec<Duration> = timings.iter().map(|t| t.total).collect();
        values.sort();
        values.get(values.len() / 2).copied()
    };
    let (edit_ours, edit_theirs) = (median(&ours), median(&theirs));
    let loads: Vec<f64> = loads.into_iter().flatten().collect();
    let (low, high) = loads
        .iter()
        .fold((f64::INFINITY, 0.0_f64), |(l, h), x| (l.min(*x), h.max(*x)));

    let mut report = format!(
        "The service image: the rendered `dev` Dockerfile (dependency layer keyed by the \
         manifests and `Cargo.lock`, then `COPY . .` and `cargo build --release` of \
         address-service; builder `wactl.local/rust-builder`, crates offline), context a copy \
         of this checkout. wactl (release build) runs `wactl build dev`; the peer runs \
         `DOCKER_BUILDKIT=0 docker build` with the same rendered Dockerfile and build \
         arguments, so both reuse the same layers. The cold build ran once; the one-line change \
         (a comment line appended to `{EDITED}`, a new line before each build) is the median of \
         {runs} run(s) per side, alternating. 1-minute load average during the run: {low:.1}–{high:.1} \
         on the shared 2-core machine, so absolute times vary with whatever else runs there; \
         the ratios are what this measures.\n\n\
         | build | wactl | docker CLI | ratio (wactl / CLI) |\n| --- | --- | --- | --- |\n"
    );
    report.push_str(&format!(
        "| cold (no layer cache, once) | {} | {} | {} |\n",
        fmt(Some(cold)),
        cli_cold.map_or("not measured".to_owned(), |d| fmt(Some(d))),
        ratio(Some(cold), cli_cold)
    ));
    report.push_str(&format!(
        "| one-line change in `{EDITED}` | {} | {} | {} |\n\n",
        fmt(edit_ours),
        fmt(edit_theirs),
        ratio(edit_ours, edit_theirs)
    ));
    report.push_str(&format!(
        "**One-line change / cold build (wactl): {}** (aim ≤ 0.25).\n",
        ratio(edit_ours, Some(cold))
    ));
    println!("{report}");
    crate::bench::write_section(
        "build: service image",
        "`cargo xtask bench build --service --runs N` — the service image's dependency layer, \
         `wactl build` vs `docker build`.",
        &report,
    )?;
    eprintln!("bench build: wrote the `build: service image` section of docs/benchmarks.md");
    Ok(())
}

/// Copies the files git knows (tracked, and untracked but not ignored) of `root` to `to`.
pub(crate) fn copy_checkout(root: &Path, to: &Path) -> anyhow::Result<()> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output()
        .context("running git ls-files")?;
    if !out.status.success() {
        bail!("git ls-files failed in {}", root.display());
    }
    let mut copied = 0;
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).context("a file name that is not UTF-8")?;
        let from = root.join(name);
        // Listed but deleted in the working tree: the build would not see it either.
        if !from.exists() {
            continue;
        }
        let dest = to.join(name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&from, &dest).with_context(|| format!("copying {name}"))?;
        copied += 1;
    }
    if copied == 0 || !to.join(EDITED).is_file() {
        bail!(
            "copied {copied} files from {}, without {EDITED}",
            root.display()
        );
    }
    Ok(())
}

/// Appends one comment line to [`EDITED`]: a change that recompiles the crate.
pub(crate) fn edit_one_line(context: &Path, mark: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let path = context.join(EDITED);
    let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
    writeln!(file, "// bench build: one-line change ({mark})")?;
    Ok(())
}

/// `image.buildArgs` of the bench's copy of `environment`, for the CLI's `--build-arg`.
pub(crate) fn build_args(
    env_dir: &Path,
    environment: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let path = env_dir.join(format!("{environment}.yaml"));
    let text = std::fs::read_to_string(&path)?;
    let definition: serde_json::Value =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(args) = definition["image"]["buildArgs"].as_object() else {
        bail!(
            "environments/{environment}.yaml has no image.buildArgs (the offline build needs them)"
        );
    };
    Ok(args
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect())
}

pub(crate) fn load_note(before: Option<f64>, after: Option<f64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) => format!(
            "1-minute load average {b:.1} before and {a:.1} after, on the shared 2-core machine."
        ),
        _ => String::new(),
    }
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
        .args(["--output", "json", "build", "dev", "--source"])
        .arg(root);
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

/// The CLI's tag, in the bench's own repository.
/// The LABEL line wactl appends for its five OCI labels (values of the same length).
const SAME_LABELS: &str = "LABEL \"org.opencontainers.image.created\"='2026-12-01T00:00:00Z' \
     \"org.opencontainers.image.revision\"='0123456789abcdef0123456789abcdef01234567' \
     \"org.opencontainers.image.source\"='https://github.com/world-address/wactl' \
     \"org.opencontainers.image.title\"='address-service' \
     \"org.opencontainers.image.version\"='git-0123456789ab'";

fn cli_tag() -> String {
    format!("{IMAGE}:bench-cli")
}

/// Runs the classic-builder CLI; the context is uploaded when the first step is printed.
pub(crate) fn cli_build(
    root: &Path,
    dockerfile: &Path,
    tag: &str,
    build_args: &[(String, String)],
    full: bool,
) -> anyhow::Result<Timing> {
    let mut command = Command::new("docker");
    command
        .arg("build")
        .arg("-f")
        .arg(dockerfile)
        .args(["-t", tag]);
    for (key, value) in build_args {
        command.arg("--build-arg").arg(format!("{key}={value}"));
    }
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
