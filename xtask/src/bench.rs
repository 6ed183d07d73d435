//! What the benchmarks share: timing with hyperfine, peers built from the Go module proxy,
//! and each benchmark's own section of `docs/benchmarks.md`.

use crate::project;
use anyhow::Context;
use std::path::PathBuf;

/// Replaces (or appends) the `## NAME` section of docs/benchmarks.md: the heading, a
/// line saying what ran against what, then `body`.
pub fn write_section(name: &str, intro: &str, body: &str) -> anyhow::Result<()> {
    let path = project::root().join("docs/benchmarks.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let heading = format!("## {name}");
    // A blank line before the next section; the file itself ends in one newline.
    let section = format!("{heading}\n\n{intro}\n\n{}\n\n", body.trim_end());
    let start = if existing.starts_with(&format!("{heading}\n")) {
        Some(0)
    } else {
        existing.find(&format!("\n{heading}\n")).map(|i| i + 1)
    };
    let updated = match start {
        Some(start) => {
            let after = start + heading.len();
            let end = existing[after..]
                .find("\n## ")
                .map_or(existing.len(), |i| after + i + 1);
            format!("{}{section}{}", &existing[..start], &existing[end..])
        }
        None => format!("{}\n\n{section}", existing.trim_end()),
    };
    let updated = format!("{}\n", updated.trim_end());
    std::fs::write(&path, updated).with_context(|| format!("writing {}", path.display()))
}

/// Builds the debug wactl the benchmark `name` times (the time measured is the engine's,
/// the cluster's and the waits', not wactl's code) and returns its path.
pub fn build_wactl(name: &str) -> anyhow::Result<PathBuf> {
    eprintln!("bench {name}: building wactl (debug)");
    project::build_binary("wactl", false)
}

/// Builds the release wactl the benchmark `name` times, for benchmarks whose numbers
/// include wactl's own work (scanning, hashing, rendering), and returns its path.
pub fn build_wactl_release(name: &str) -> anyhow::Result<PathBuf> {
    eprintln!("bench {name}: building wactl (release)");
    // The same command as `bench render`, so the benches share one release build (`-p
    // wactl` resolves features differently and would build a second one).
    let sh = project::shell()?;
    xshell::cmd!(sh, "cargo build --quiet --release --bin wactl").run()?;
    Ok(project::target_dir().join("release/wactl"))
}

/// The 1-minute load average, as `/proc/loadavg` gives it (`None` elsewhere): the machine
/// is shared, and the doc says how busy it was.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Helm, built from the Go module proxy and cached outside the repository.
pub fn ensure_helm() -> anyhow::Result<PathBuf> {
    const VERSION: &str = "v3.22.0";
    let bin = cache_dir()?.join("bin");
    let helm = bin.join(format!("helm-{VERSION}"));
    if helm.is_file() {
        return Ok(helm);
    }
    let build = bin.join(format!("helm-{VERSION}.d"));
    let sh = project::shell()?;
    eprintln!("xtask: building helm {VERSION} from the Go module proxy");
    xshell::cmd!(sh, "go install helm.sh/helm/v3/cmd/helm@{VERSION}")
        .env("GOBIN", &build)
        .env("GOFLAGS", "-buildvcs=false")
        .run()
        .context("building helm")?;
    std::fs::rename(build.join("helm"), &helm)?;
    Ok(helm)
}

/// One command's timing from hyperfine, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub mean: f64,
    pub stddev: f64,
    /// Mean CPU time (user + system): steadier than wall time on a busy machine.
    pub cpu: f64,
}

/// Timing of each command, from `hyperfine --export-json`.
pub fn hyperfine(commands: &[&str], runs: u32) -> anyhow::Result<Vec<Timing>> {
    crate::tools::ensure(&[crate::tools::Tool {
        program: "hyperfine",
        package: "hyperfine",
    }])?;
    let out = tempfile_path("hyperfine.json");
    let sh = project::shell()?;
    let runs = runs.to_string();
    let export = out.to_string_lossy().into_owned();
    xshell::cmd!(
        sh,
        "hyperfine -N --warmup 3 --runs {runs} --export-json {export} {commands...}"
    )
    .run()?;
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
    let results = report["results"]
        .as_array()
        .context("hyperfine report without results")?;
    let number = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    Ok(results
        .iter()
        .map(|r| Timing {
            mean: number(r, "mean"),
            stddev: number(r, "stddev"),
            cpu: number(r, "user") + number(r, "system"),
        })
        .collect())
}

/// Where built tools are cached: `$WACTL_CACHE_DIR`, default `$HOME/.cache/wactl`.
fn cache_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os("WACTL_CACHE_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
                .join(".cache/wactl"),
        ),
    }
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wactl-bench-{}-{name}", std::process::id()))
}
