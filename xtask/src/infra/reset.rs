//! `cargo xtask infra reset`: back to a machine that never ran the tests, less the caches.
//!
//! Stops everything `up` started, then deletes what outlives a test run: the clusters
//! (etcd of both, the second one's `cluster-2/` and `kubeconfig-2`, the real node's
//! containerd, kubelet and volumes), the registries' contents,
//! PostgreSQL's cluster, the local stack's containers and volumes, and the rest of the
//! state directory. Kept: the build cache (`$WACTL_CACHE_DIR`: Kubernetes binaries, Go
//! modules, cargo registry for images) and the Docker images, so the next `up` takes
//! minutes rather than the half hour of a fresh machine.

use super::state::StateDir;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where PostgreSQL's cluster lives when the state dir is out of the `postgres` user's
/// reach (see `postgres.rs`); removed with the rest.
const POSTGRES_OUTSIDE: &str = "/var/lib/postgresql/wactl-infra";
/// The real node's containerd run directory (see `real_node.rs`).
const CONTAINERD_RUN: &str = "/run/wactl-containerd";
/// The compose label every container and volume of `wactl up` carries.
const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

pub fn reset() -> anyhow::Result<()> {
    let state = StateDir::from_env()?;
    if super::docker::answers() {
        remove_local_stacks()?;
    }
    super::down()?;
    let mut removed = Vec::new();
    for dir in [
        state.root().to_owned(),
        PathBuf::from(POSTGRES_OUTSIDE),
        PathBuf::from(CONTAINERD_RUN),
    ] {
        // The kubelet leaves tmpfs mounts (secrets, service account tokens) under its root,
        // and containerd its sandboxes' shm under its run directory.
        for mount in mounts_under(&dir)? {
            let _ = Command::new("umount").arg("--lazy").arg(&mount).status();
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            removed.push(dir.display().to_string());
        }
    }
    eprintln!(
        "infra: reset: removed {}; kept the build cache ({}) and the Docker images",
        if removed.is_empty() {
            "nothing (already clean)".to_owned()
        } else {
            removed.join(", ")
        },
        super::binaries::cache_dir()?.display()
    );
    Ok(())
}

/// Containers and volumes of every `wactl up` stack (any project), so the next `up`
/// starts from nothing.
fn remove_local_stacks() -> anyhow::Result<()> {
    let filter = format!("label={COMPOSE_PROJECT_LABEL}");
    let containers = docker(&["ps", "--all", "--quiet", "--filter", &filter])?;
    let containers: Vec<&str> = containers.split_whitespace().collect();
    if !containers.is_empty() {
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(&containers);
        docker(&args)?;
    }
    let volumes = docker(&["volume", "ls", "--quiet", "--filter", &filter])?;
    let volumes: Vec<&str> = volumes.split_whitespace().collect();
    if !volumes.is_empty() {
        let mut args = vec!["volume", "rm", "--force"];
        args.extend(&volumes);
        docker(&args)?;
    }
    eprintln!(
        "infra: reset: removed {} local-stack containers and {} volumes",
        containers.len(),
        volumes.len()
    );
    Ok(())
}

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", super::docker::DOCKER_HOST)
        .stdin(Stdio::null())
        .output()
        .context("running docker")?;
    anyhow::ensure!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Mount points below `root`, deepest first (so nested ones go before their parents).
fn mounts_under(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let table = match std::fs::read_to_string("/proc/self/mounts") {
        Ok(table) => table,
        Err(_) => return Ok(Vec::new()),
    };
    Ok(mount_points_under(&table, root))
}

fn mount_points_under(table: &str, root: &Path) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        // /proc/mounts escapes spaces and the like as octal (`\040`).
        .map(|field| PathBuf::from(field.replace("\\040", " ")))
        .filter(|mount| mount.starts_with(root) && mount != root)
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    mounts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mounts_below_the_state_dir_deepest_first() {
        let table = "\
proc /proc proc rw 0 0
tmpfs /root/state/real-node/kubelet/pods/a/volumes/x tmpfs rw 0 0
tmpfs /root/state/real-node/kubelet/pods/a tmpfs rw 0 0
tmpfs /root/state-other/x tmpfs rw 0 0
tmpfs /root/state/with\\040space tmpfs rw 0 0
";
        let mounts = mount_points_under(table, Path::new("/root/state"));
        assert_eq!(
            mounts,
            [
                PathBuf::from("/root/state/real-node/kubelet/pods/a/volumes/x"),
                PathBuf::from("/root/state/real-node/kubelet/pods/a"),
                PathBuf::from("/root/state/with space"),
            ]
        );
    }
}
