//! Where the repository is, and how xtask runs the programs it drives.

use std::path::{Path, PathBuf};

/// The workspace root, derived from this crate's manifest directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, default `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Builds the binary of `package` (`release` or debug) and returns its path.
pub fn build_binary(package: &str, release: bool) -> anyhow::Result<PathBuf> {
    let mut args = vec!["build", "--locked", "-p", package];
    if release {
        args.push("--release");
    }
    let status = std::process::Command::new("cargo")
        .args(&args)
        .current_dir(root())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run cargo: {e}"))?;
    anyhow::ensure!(status.success(), "cargo {} failed", args.join(" "));
    let profile = if release { "release" } else { "debug" };
    Ok(target_dir().join(profile).join(package))
}

/// A shell rooted at the workspace.
pub fn shell() -> anyhow::Result<xshell::Shell> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(root());
    Ok(sh)
}
