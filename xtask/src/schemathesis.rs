//! `cargo xtask schemathesis`: schemathesis against the real address-service's `/openapi.json`,
//! with every check on (no 5xx, responses that match the spec, invalid input refused, valid
//! input accepted), for a bounded time. `cargo xtask test` runs it after the cargo tests.

use crate::bench_service::{Server, free_port, wait_http};
use crate::project;
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The version CI runs; bump deliberately (new releases add checks).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// `normalize` and `format` answer 422 for an address that fits the schema but breaks its
/// country's rules (a required street, a postal code of the wrong shape): the schema cannot
/// say which fields a country needs, so for those two operations a documented 422 counts as
/// accepting valid data. `validate` answers 200 for every well-formed address and keeps the
/// default expectation.
const CONFIG: &str = r#"[[operations]]
include-path-regex = "^/v1/addresses/(normalize|format)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"#;

#[derive(clap::Args)]
pub struct Args {
    /// Time budget for the whole schemathesis run, in seconds.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let target = project::target_dir();
    let st = ensure_schemathesis(&target)?;
    let binary = project::build_binary("address-service", false)?;
    let port = free_port()?;
    let log = tempfile::NamedTempFile::new()?;
    let _service = Server(
        Command::new(&binary)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("REQUIRE_API_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log.reopen()?)
            .spawn()
            .context("starting address-service")?,
    );
    wait_http(port, Duration::from_secs(20))?;
    let report_dir = target.join("schemathesis");
    std::fs::create_dir_all(&report_dir)?;
    eprintln!(
        "xtask schemathesis: {} against 127.0.0.1:{port} for at most {}s",
        SCHEMATHESIS, args.seconds
    );
    let config = report_dir.join("schemathesis.toml");
    std::fs::write(&config, CONFIG)?;
    let status = Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["--checks", "all"])
        .args(["--max-time", &args.seconds.to_string()])
        .args(["--workers", "2", "--request-timeout", "10"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report_dir)
        // Its example database (`.schemathesis/`) goes under target/, not the checkout.
        .current_dir(&report_dir)
        // No telemetry, and nothing leaves 127.0.0.1.
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        .status()
        .context("running schemathesis")?;
    let service_log = std::fs::read_to_string(log.path()).unwrap_or_default();
    if service_log.contains("panicked") {
        bail!("address-service panicked during the schemathesis run:\n{service_log}");
    }
    if !status.success() {
        bail!(
            "schemathesis found failures (report in {}); service log:\n{service_log}",
            report_dir.display()
        );
    }
    eprintln!(
        "xtask schemathesis: no failures (JUnit report in {})",
        report_dir.display()
    );
    Ok(())
}

/// schemathesis in a venv under the target directory, installed once from PyPI.
fn ensure_schemathesis(target: &std::path::Path) -> anyhow::Result<PathBuf> {
    let venv = target.join("schemathesis-venv");
    let st = venv.join("bin/st");
    let version = SCHEMATHESIS.trim_start_matches("schemathesis==");
    let installed = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('schemathesis'))",
        ])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == version);
    if installed && st.is_file() {
        return Ok(st);
    }
    if !venv.join("bin/python").is_file() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("python3 -m venv (apt-get install python3-venv)")?
            .success();
        if !ok {
            bail!("python3 -m venv {} failed", venv.display());
        }
    }
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", SCHEMATHESIS])
        .status()
        .context("pip install schemathesis")?
        .success();
    if !ok {
        bail!("pip install {SCHEMATHESIS} failed");
    }
    Ok(st)
}
