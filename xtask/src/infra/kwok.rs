//! kwok: simulated nodes that run pods through the stages in `xtask/assets/infra/kwok/`,
//! including the failures a test asks for with the `wactl.dev/kwok-fault` annotation; one
//! kwok per cluster.

use super::binaries::Binaries;
use super::cluster::Cluster;
use super::process::{self, Service};
use super::state::{StateDir, write_if_changed};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const COMPONENT: &str = "kwok";
/// Annotation that tells kwok which nodes are its own.
const NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// The simulated nodes.
pub const NODES: [&str; 2] = ["kwok-node-0", "kwok-node-1"];

pub fn up(state: &StateDir, cluster: &Cluster, bins: &Binaries) -> anyhow::Result<()> {
    let component = cluster.component(COMPONENT);
    let addr = cluster.kwok_addr();
    let config = cluster.path(state, "kwok/kwok.yaml");
    let stages = stages(&crate::project::root().join("xtask/assets/infra/kwok"))?;
    write_if_changed(&config, stages.as_bytes())?;
    let stage_hash = format!("{:x}", fnv1a(stages.as_bytes()));

    let mut command = Command::new(&bins.kwok);
    command
        .arg(format!(
            "--kubeconfig={}",
            cluster.path(state, "kubeconfigs/kwok").display()
        ))
        .arg(format!("--config={}", config.display()))
        .arg("--manage-all-nodes=false")
        .arg(format!(
            "--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake"
        ))
        .arg(format!("--server-address={addr}"))
        .arg("--cidr=10.244.0.0/16")
        .arg("--node-ip=10.240.0.1")
        // Not read by kwok; it makes a stage edit change the command line, so `up` restarts
        // kwok to load the new stages.
        .env("WACTL_KWOK_STAGES", stage_hash);
    Service {
        component: &component,
        addr: &addr,
        command,
        ready: &|| healthy(cluster),
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)?;

    kubectl_apply(state, cluster, bins, &nodes_manifest())?;
    let out = kubectl(state, cluster, bins)
        .args(["wait", "--for=condition=Ready", "--timeout=60s"])
        .args(NODES.iter().map(|n| format!("node/{n}")))
        .output()
        .context("running kubectl wait")?;
    if !out.status.success() {
        bail!(
            "kwok nodes did not become Ready within 60s: {}; see {}",
            String::from_utf8_lossy(&out.stderr).trim(),
            state.log(&component).display()
        );
    }
    eprintln!(
        "infra: kwok nodes  Ready in {}: {}",
        cluster.context,
        NODES.join(", ")
    );
    Ok(())
}

fn healthy(cluster: &Cluster) -> bool {
    super::control_plane::curl_ok(&format!("http://{}/healthz", cluster.kwok_addr()), &[])
}

pub fn down(state: &StateDir, cluster: &Cluster) -> anyhow::Result<()> {
    let component = cluster.component(COMPONENT);
    if process::stop(state, &component, Duration::from_secs(10))? {
        eprintln!("infra: {component:<25} stopped");
    }
    Ok(())
}

pub fn status(state: &StateDir, cluster: &Cluster) -> String {
    super::component_status(
        state,
        &cluster.component(COMPONENT),
        &cluster.kwok_addr(),
        healthy(cluster),
    )
}

/// Every stage file in `dir` (`*.yaml`, by file name), as one multi-document YAML.
fn stages(dir: &Path) -> anyhow::Result<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out =
        String::from("# written by `cargo xtask infra up` from xtask/assets/infra/kwok\n");
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        out.push_str("---\n");
        out.push_str(text.trim_end());
        out.push('\n');
    }
    Ok(out)
}

/// The Node objects kwok adopts: untainted, so workloads schedule without tolerations.
fn nodes_manifest() -> String {
    NODES
        .iter()
        .map(|name| {
            format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  annotations:\n    \
                 {NODE_ANNOTATION}: fake\n    node.alpha.kubernetes.io/ttl: \"0\"\n  labels:\n    \
                 type: kwok\n    kubernetes.io/arch: amd64\n    kubernetes.io/os: linux\n    \
                 kubernetes.io/hostname: {name}\n    node-role.kubernetes.io/agent: \"\"\n\
                 status:\n  allocatable:\n    cpu: \"32\"\n    memory: 128Gi\n    pods: \"110\"\n  \
                 capacity:\n    cpu: \"32\"\n    memory: 128Gi\n    pods: \"110\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The pinned kubectl, as the cluster's admin.
pub fn kubectl(state: &StateDir, cluster: &Cluster, bins: &Binaries) -> Command {
    let mut command = Command::new(&bins.kubectl);
    command.arg(format!(
        "--kubeconfig={}",
        cluster.kubeconfig(state).display()
    ));
    command
}

pub fn kubectl_apply(
    state: &StateDir,
    cluster: &Cluster,
    bins: &Binaries,
    manifest: &str,
) -> anyhow::Result<()> {
    let mut child = kubectl(state, cluster, bins)
        .args([
            "apply",
            "--server-side",
            "--field-manager=wactl-infra",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running kubectl apply")?;
    child
        .stdin
        .take()
        .context("kubectl stdin")?
        .write_all(manifest.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A stable, dependency-free fingerprint of the stage files.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_manifest_carries_the_annotation_kwok_selects_on() {
        let manifest = nodes_manifest();
        assert_eq!(manifest.matches("kind: Node").count(), NODES.len());
        assert!(manifest.contains("    kwok.x-k8s.io/node: fake\n"));
        assert!(
            !manifest.contains("taints"),
            "nodes must take pods without tolerations"
        );
    }

    #[test]
    fn stage_templates_close_every_block() {
        let dir = crate::project::root().join("xtask/assets/infra/kwok");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let count = |words: &[&str]| {
                text.split("{{")
                    .skip(1)
                    .filter(|action| {
                        let first = action.split_whitespace().next().unwrap_or_default();
                        words.contains(&first)
                    })
                    .count()
            };
            assert_eq!(
                count(&["range", "if", "with"]),
                count(&["end"]),
                "{} opens a template block it never ends",
                path.display()
            );
        }
    }

    #[test]
    fn every_asset_stage_is_loaded_and_faults_are_covered() {
        let text = stages(&crate::project::root().join("xtask/assets/infra/kwok")).unwrap();
        for fault in ["crashloop", "imagepull", "never-ready", "slow-start"] {
            assert!(
                text.contains(&format!("- '{fault}'")),
                "no stage for {fault}"
            );
        }
        assert!(text.contains("name: wactl-pod-ready"));
        assert!(text.contains("name: wactl-node-initialize"));
    }
}
