//! Two image registries (Debian's `docker-registry`): an open one and one behind htpasswd.

use super::process::{self, Liveness};
use super::state::{StateDir, random_hex, write_if_changed};
use anyhow::{Context, bail};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

pub const OPEN_ADDR: &str = "127.0.0.1:5000";
pub const AUTH_ADDR: &str = "127.0.0.1:5001";
pub const AUTH_USER: &str = "wactl";

/// One registry instance.
struct Registry {
    component: &'static str,
    addr: &'static str,
    auth: bool,
}

const REGISTRIES: [Registry; 2] = [
    Registry {
        component: "registry",
        addr: OPEN_ADDR,
        auth: false,
    },
    Registry {
        component: "registry-auth",
        addr: AUTH_ADDR,
        auth: true,
    },
];

/// The generated password of the htpasswd registry, created on first use.
pub fn auth_password(state: &StateDir) -> anyhow::Result<String> {
    let path = state.join("registry-auth/password");
    if let Ok(password) = std::fs::read_to_string(&path) {
        return Ok(password.trim().to_string());
    }
    let password = random_hex(16)?;
    write_if_changed(&path, format!("{password}\n").as_bytes())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(password)
}

pub fn up(state: &StateDir) -> anyhow::Result<()> {
    for registry in &REGISTRIES {
        registry.up(state)?;
    }
    Ok(())
}

pub fn down(state: &StateDir) -> anyhow::Result<()> {
    for registry in &REGISTRIES {
        if process::stop(state, registry.component, Duration::from_secs(10))? {
            eprintln!("infra: {:<11} stopped", registry.component);
        }
    }
    Ok(())
}

pub fn status(state: &StateDir) -> Vec<String> {
    REGISTRIES
        .iter()
        .map(|r| super::component_status(state, r.component, r.addr, process::port_open(r.addr)))
        .collect()
}

impl Registry {
    fn up(&self, state: &StateDir) -> anyhow::Result<()> {
        let dir = state.dir(self.component)?;
        let config = dir.join("config.yml");
        let htpasswd = dir.join("htpasswd");
        let secret_path = dir.join("http-secret");
        let secret = match std::fs::read_to_string(&secret_path) {
            Ok(secret) => secret.trim().to_string(),
            Err(_) => {
                let secret = random_hex(16)?;
                std::fs::write(&secret_path, &secret)?;
                secret
            }
        };
        let auth = if self.auth {
            let password = auth_password(state)?;
            write_htpasswd(&htpasswd, &password)?;
            format!(
                "auth:\n  htpasswd:\n    realm: wactl-registry\n    path: {}\n",
                htpasswd.display()
            )
        } else {
            String::new()
        };
        let storage = state.dir(format!("{}/storage", self.component))?;
        let yaml = format!(
            "# written by `cargo xtask infra up`\nversion: 0.1\nlog:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {}\n  secret: {secret}\n{auth}",
            storage.display(),
            self.addr,
        );
        let changed = write_if_changed(&config, yaml.as_bytes())?;

        match process::liveness(state, self.component) {
            Liveness::Running(pid) if !changed && process::port_open(self.addr) => {
                eprintln!(
                    "infra: {:<11} up   http://{} (pid {pid})",
                    self.component, self.addr
                );
                return Ok(());
            }
            Liveness::Running(_) => {
                process::stop(state, self.component, Duration::from_secs(10))?;
            }
            Liveness::Stale | Liveness::Absent => {}
        }
        if process::port_open(self.addr) {
            return Err(process::busy_port(self.addr, self.component));
        }
        let program =
            crate::tools::which("docker-registry").context("docker-registry not found")?;
        let mut command = Command::new(program);
        command.arg("serve").arg(&config);
        let pid = process::spawn(state, self.component, command)?;
        process::wait_started(state, self.component, Duration::from_secs(30), || {
            Ok(process::port_open(self.addr))
        })?;
        eprintln!(
            "infra: {:<11} up   http://{} (started, pid {pid})",
            self.component, self.addr
        );
        Ok(())
    }
}

fn write_htpasswd(path: &std::path::Path, password: &str) -> anyhow::Result<()> {
    // bcrypt salts differ per run, so keep an existing file that still matches the password.
    if path.exists() {
        let check = Command::new("htpasswd")
            .args(["-vb", &path.display().to_string(), AUTH_USER, password])
            .output()
            .context("running htpasswd -v")?;
        if check.status.success() {
            return Ok(());
        }
    }
    let out = Command::new("htpasswd")
        .args(["-Bbn", AUTH_USER, password])
        .output()
        .context("running htpasswd (Debian package apache2-utils)")?;
    if !out.status.success() {
        bail!(
            "htpasswd -Bbn failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(path, &out.stdout).with_context(|| format!("writing {}", path.display()))
}
