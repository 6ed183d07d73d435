//! Where infra keeps its state (pidfiles, logs, data, credentials) and its build cache.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Environment variable that moves the state directory.
pub const STATE_DIR_ENV: &str = "WACTL_INFRA_DIR";

/// The state directory of one machine's infrastructure: `$WACTL_INFRA_DIR`, by default
/// `$HOME/.local/state/wactl/infra`.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn from_env() -> anyhow::Result<Self> {
        let root = match std::env::var_os(STATE_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => home()?.join(".local/state/wactl/infra"),
        };
        Ok(Self { root })
    }

    #[cfg(test)]
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the state directory.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// A directory inside the state directory, created when missing.
    pub fn dir(&self, rel: impl AsRef<Path>) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(rel);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    pub fn pidfile(&self, component: &str) -> PathBuf {
        self.root.join("run").join(format!("{component}.pid"))
    }

    pub fn log(&self, component: &str) -> PathBuf {
        self.root.join("log").join(format!("{component}.log"))
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set; set it or WACTL_INFRA_DIR")
}

/// Writes a file only when its content changed, so restarts see stable mtimes.
pub fn write_if_changed(path: &Path, content: &[u8]) -> anyhow::Result<bool> {
    if std::fs::read(path).ok().as_deref() == Some(content) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// A random hex string from the operating system's generator (passwords, registry secrets).
pub fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| anyhow::anyhow!("getting random bytes from the operating system: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
