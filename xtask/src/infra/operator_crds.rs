//! The Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule, …) for the test cluster,
//! generated with controller-gen from the operator's API types, both from the Go module
//! proxy at pinned versions, and cached as `<cache>/crds/prometheus-operator-<version>/`.
//!
//! Only the CRDs are installed (no operator runs): enough for the API server to validate
//! and store the objects `monitoring.mode: operator` renders.

use super::binaries::{self, Binaries};
use super::cluster::Cluster;
use super::state::{StateDir, write_if_changed};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const CONTROLLER_TOOLS_VERSION: &str = "v0.23.0";
pub const OPERATOR_VERSION: &str = "v0.95.2";
const OPERATOR_API_MODULE: &str =
    "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring";

/// Generates the CRDs if the cache lacks them and applies them to `cluster`.
pub fn install(state: &StateDir, cluster: &Cluster, bins: &Binaries) -> anyhow::Result<()> {
    let dir = ensure()?;
    let mut manifest = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
    {
        manifest.push_str("---\n");
        manifest.push_str(&std::fs::read_to_string(file)?);
    }
    if manifest.is_empty() {
        bail!("controller-gen wrote no CRD into {}", dir.display());
    }
    super::kwok::kubectl_apply(state, cluster, bins, &manifest).with_context(|| {
        format!(
            "installing the Prometheus Operator's CRDs in {}",
            cluster.context
        )
    })
}

/// The directory of generated CRD files, generating them when missing.
pub fn ensure() -> anyhow::Result<PathBuf> {
    let cache = binaries::cache_dir()?;
    let out = cache
        .join("crds")
        .join(format!("prometheus-operator-{OPERATOR_VERSION}"));
    if out.join(".complete").is_file() {
        return Ok(out);
    }
    let go = binaries::go_tool()?;
    let work = cache.join("go").join(format!(
        "operator-crds-{OPERATOR_VERSION}-{CONTROLLER_TOOLS_VERSION}"
    ));
    std::fs::create_dir_all(&work)?;
    let log = work.join("build.log");
    eprintln!(
        "infra: generating the Prometheus Operator {OPERATOR_VERSION} CRDs with controller-gen \
         {CONTROLLER_TOOLS_VERSION} (cold: a few minutes; log {})",
        log.display()
    );
    let started = Instant::now();
    // A wrapper module that requires both, so controller-gen loads the API package from the
    // module cache at exactly the pinned version.
    write_if_changed(
        &work.join("go.mod"),
        b"module wactl.local/infra/operator-crds\n\ngo 1.24\n",
    )?;
    write_if_changed(
        &work.join("tools.go"),
        format!(
            "//go:build tools\n\npackage tools\n\nimport (\n\t_ \"sigs.k8s.io/controller-tools/cmd/controller-gen\"\n\t_ \"{OPERATOR_API_MODULE}/v1\"\n)\n"
        )
        .as_bytes(),
    )?;
    logged(&go, &work, &log)?
        .args(["get"])
        .arg(format!(
            "sigs.k8s.io/controller-tools/cmd/controller-gen@{CONTROLLER_TOOLS_VERSION}"
        ))
        .arg(format!("{OPERATOR_API_MODULE}@{OPERATOR_VERSION}"))
        .status_ok("go get", &log)?;
    let controller_gen = work.join("controller-gen");
    logged(&go, &work, &log)?
        .args(["build", "-trimpath", "-o"])
        .arg(&controller_gen)
        .arg("sigs.k8s.io/controller-tools/cmd/controller-gen")
        .status_ok("go build controller-gen", &log)?;
    let staging = work.join("out");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    // The operator's own Makefile generates its CRDs with these options (no descriptions,
    // so the objects stay under the annotation size limit of client-side tools).
    logged(&controller_gen, &work, &log)?
        .arg("crd:crdVersions=v1,maxDescLen=0,allowDangerousTypes=true")
        .arg(format!("paths={OPERATOR_API_MODULE}/v1"))
        .arg(format!("output:crd:dir={}", staging.display()))
        .status_ok("controller-gen", &log)?;
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(out.parent().context("crd dir without parent")?)?;
    std::fs::rename(&staging, &out)?;
    std::fs::write(out.join(".complete"), "")?;
    eprintln!(
        "infra: generated the CRDs in {:.0}s into {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(out)
}

/// A command in `dir` whose output goes to `log`.
fn logged(program: &Path, dir: &Path, log: &Path) -> anyhow::Result<Command> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .env("CGO_ENABLED", "0")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    Ok(command)
}

trait StatusOk {
    fn status_ok(&mut self, what: &str, log: &Path) -> anyhow::Result<()>;
}

impl StatusOk for Command {
    fn status_ok(&mut self, what: &str, log: &Path) -> anyhow::Result<()> {
        let status = self.status().with_context(|| format!("running {what}"))?;
        if !status.success() {
            bail!(
                "{what} failed ({status}); last lines of {}:\n{}",
                log.display(),
                super::process::log_tail(log, 20)
            );
        }
        Ok(())
    }
}
