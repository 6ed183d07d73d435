//! Where the repository is, and how xtask runs the programs it drives.

use std::path::{Path, PathBuf};

/// The workspace root, derived from this crate's manifest directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A shell rooted at the workspace.
pub fn shell() -> anyhow::Result<xshell::Shell> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(root());
    Ok(sh)
}
