//! The Docker Engine: reuse one that answers on the socket, otherwise start `dockerd`.

use super::process::{self, Liveness};
use super::state::StateDir;
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

pub const SOCKET: &str = "/var/run/docker.sock";
pub const DOCKER_HOST: &str = "unix:///var/run/docker.sock";
const COMPONENT: &str = "dockerd";

/// True when a Docker Engine answers `GET /_ping` on the socket.
pub fn answers() -> bool {
    ping().unwrap_or(false)
}

fn ping() -> std::io::Result<bool> {
    let mut stream = UnixStream::connect(SOCKET)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.starts_with("HTTP/1.") && response.contains(" 200 "))
}

pub fn up(state: &StateDir) -> anyhow::Result<()> {
    if answers() {
        let owner = match process::liveness(state, COMPONENT) {
            Liveness::Running(pid) => format!("started by infra, pid {pid}"),
            _ => "not started by infra; left alone".to_string(),
        };
        eprintln!("infra: docker      up   {DOCKER_HOST} ({owner})");
        return Ok(());
    }
    if let Liveness::Running(pid) = process::liveness(state, COMPONENT) {
        bail!(
            "dockerd (pid {pid}, started by infra) runs but does not answer on {SOCKET}; \
             see {} and run `cargo xtask infra down` then `up`",
            state.log(COMPONENT).display()
        );
    }
    if let Some(pid) = foreign_dockerd() {
        bail!(
            "a dockerd (pid {pid}) not started by infra is running but {SOCKET} does not answer; \
             stop it or fix it (its log usually says why), then run `cargo xtask infra up` again"
        );
    }
    let dir = state.dir("docker")?;
    let mut dockerd = Command::new(crate::tools::which("dockerd").context("dockerd not found")?);
    dockerd
        .arg(format!("--host=unix://{SOCKET}"))
        .arg(format!("--pidfile={}", dir.join("docker.pid").display()))
        // Published ports default to loopback, so a forgotten `-p 8080:8080` stays local.
        .arg("--ip=127.0.0.1");
    let pid = process::spawn(state, COMPONENT, dockerd)?;
    process::wait_started(state, COMPONENT, Duration::from_secs(60), || Ok(answers()))?;
    eprintln!("infra: docker      up   {DOCKER_HOST} (started, pid {pid})");
    Ok(())
}

/// A `dockerd` process that infra's pidfile does not know about.
fn foreign_dockerd() -> Option<u32> {
    let out = Command::new("pgrep")
        .args(["-x", "dockerd"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .find(|pid| process::alive(*pid))
}

pub fn down(state: &StateDir) -> anyhow::Result<()> {
    if process::stop(state, COMPONENT, Duration::from_secs(30))? {
        eprintln!("infra: docker      stopped");
    }
    Ok(())
}

pub fn status(state: &StateDir) -> String {
    let up = answers();
    let owner = match process::liveness(state, COMPONENT) {
        Liveness::Running(pid) => format!("infra pid {pid}"),
        Liveness::Stale => "stale pidfile".into(),
        Liveness::Absent if up => "external".into(),
        Liveness::Absent => String::new(),
    };
    super::status_line("docker", up, DOCKER_HOST, &owner)
}
