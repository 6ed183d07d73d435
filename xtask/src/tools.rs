//! Host tools the tests and infrastructure need, installed from Debian's packages when missing.

use anyhow::{Context, bail};
use std::process::Command;

/// A program the tests call, and the Debian package that provides it.
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
}

/// Everything `cargo xtask test` needs on the host besides the infrastructure services.
pub const TEST_TOOLS: &[Tool] = &[
    Tool {
        program: "nginx",
        package: "nginx",
    },
    Tool {
        program: "promtool",
        package: "prometheus",
    },
    Tool {
        program: "docker-compose",
        package: "docker-compose",
    },
    Tool {
        program: "zsh",
        package: "zsh",
    },
];

pub fn have(program: &str) -> bool {
    which(program).is_some()
}

pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Installs the packages of every missing tool with one `apt-get install`.
pub fn ensure(tools: &[Tool]) -> anyhow::Result<()> {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|t| !have(t.program))
        .map(|t| t.package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

pub fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    eprintln!("xtask: installing {} (apt-get)", packages.join(" "));
    if !is_root() {
        bail!(
            "missing packages {}; run as root or install them: apt-get install {}",
            packages.join(" "),
            packages.join(" ")
        );
    }
    let update = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()
        .context("running apt-get update")?;
    if !update.success() {
        bail!("apt-get update failed ({update})");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !status.success() {
        bail!("apt-get install {} failed ({status})", packages.join(" "));
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}
