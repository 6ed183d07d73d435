//! The Kubernetes clusters infra can run, each described by its names, ports, state and
//! release, so one set of start-up code (`control_plane`, `kwok`, `pki`) serves every one.

use super::state::StateDir;
use std::path::PathBuf;

/// One control plane with its kwok nodes.
#[derive(Debug)]
pub struct Cluster {
    /// Kubeconfig context and cluster name; also the controller manager's `--cluster-name`.
    pub context: &'static str,
    /// Appended to every component's name, so pidfiles, logs and `status` lines of two
    /// clusters differ (`kube-apiserver`, `kube-apiserver-2`).
    pub suffix: &'static str,
    /// Directory under the state dir with this cluster's certificates, etcd data,
    /// component kubeconfigs and kwok stages (empty: the state dir itself).
    pub dir: &'static str,
    /// File name of the cluster's own admin kubeconfig in the state dir.
    pub kubeconfig: &'static str,
    /// Kubernetes release of the API server, controller manager and scheduler.
    pub kubernetes: &'static str,
    pub etcd_port: u16,
    pub etcd_peer_port: u16,
    pub etcd_metrics_port: u16,
    pub apiserver_port: u16,
    pub controller_manager_port: u16,
    pub scheduler_port: u16,
    /// kwok's healthz and metrics.
    pub kwok_port: u16,
}

/// The cluster every single-cluster test and environment uses (`wactl-dev`).
pub const FIRST: Cluster = Cluster {
    context: "wactl-dev",
    suffix: "",
    dir: "",
    kubeconfig: "kubeconfig",
    kubernetes: super::binaries::KUBERNETES_VERSION,
    etcd_port: 2379,
    etcd_peer_port: 2380,
    etcd_metrics_port: 2381,
    apiserver_port: 6443,
    controller_manager_port: 10257,
    scheduler_port: 10259,
    kwok_port: 10247,
};

/// The second cluster (`infra up --second-cluster`), one Kubernetes minor older than the
/// first, so multi-cluster tests also cover the version skew users run.
pub const SECOND: Cluster = Cluster {
    context: "wactl-dev-2",
    suffix: "-2",
    dir: "cluster-2",
    kubeconfig: "kubeconfig-2",
    kubernetes: super::binaries::KUBERNETES_SECOND_VERSION,
    etcd_port: 2479,
    etcd_peer_port: 2480,
    etcd_metrics_port: 2481,
    apiserver_port: 6444,
    controller_manager_port: 10357,
    scheduler_port: 10359,
    kwok_port: 10347,
};

/// Every cluster, the first one first.
pub const ALL: [&Cluster; 2] = [&FIRST, &SECOND];

impl Cluster {
    /// The name of one of this cluster's components: its pidfile, log and `status` line.
    pub fn component(&self, base: &str) -> String {
        format!("{base}{}", self.suffix)
    }

    /// A path in this cluster's part of the state dir.
    pub fn path(&self, state: &StateDir, rel: &str) -> PathBuf {
        state.join(self.dir).join(rel)
    }

    /// A directory in this cluster's part of the state dir, created when missing.
    pub fn dir(&self, state: &StateDir, rel: &str) -> anyhow::Result<PathBuf> {
        state.dir(std::path::Path::new(self.dir).join(rel))
    }

    /// The admin kubeconfig with this cluster alone (for the first cluster the shared file,
    /// which lists every cluster).
    pub fn kubeconfig(&self, state: &StateDir) -> PathBuf {
        state.join(self.kubeconfig)
    }

    pub fn apiserver_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port)
    }

    pub fn etcd_addr(&self) -> String {
        loopback(self.etcd_port)
    }

    pub fn apiserver_addr(&self) -> String {
        loopback(self.apiserver_port)
    }

    pub fn controller_manager_addr(&self) -> String {
        loopback(self.controller_manager_port)
    }

    pub fn scheduler_addr(&self) -> String {
        loopback(self.scheduler_port)
    }

    pub fn kwok_addr(&self) -> String {
        loopback(self.kwok_port)
    }
}

fn loopback(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_cluster_keeps_its_historical_layout() {
        let state = StateDir::at(PathBuf::from("/s"));
        // Compared as text: the paths end up in command lines, whose change restarts a
        // running component, and `PathBuf` equality would ignore a doubled separator.
        let text = |p: PathBuf| p.display().to_string();
        assert_eq!(FIRST.component("etcd"), "etcd");
        assert_eq!(text(FIRST.path(&state, "pki")), "/s/pki");
        assert_eq!(
            text(FIRST.path(&state, "kwok/kwok.yaml")),
            "/s/kwok/kwok.yaml"
        );
        assert_eq!(text(FIRST.kubeconfig(&state)), "/s/kubeconfig");
        assert_eq!(FIRST.apiserver_url(), "https://127.0.0.1:6443");
    }

    #[test]
    fn the_second_cluster_has_its_own_names_dirs_and_ports() {
        let state = StateDir::at(PathBuf::from("/s"));
        assert_eq!(SECOND.component("etcd"), "etcd-2");
        assert_eq!(
            SECOND.path(&state, "pki"),
            PathBuf::from("/s/cluster-2/pki")
        );
        assert_eq!(SECOND.kubeconfig(&state), PathBuf::from("/s/kubeconfig-2"));
        let ports = |c: &Cluster| {
            [
                c.etcd_port,
                c.etcd_peer_port,
                c.etcd_metrics_port,
                c.apiserver_port,
                c.controller_manager_port,
                c.scheduler_port,
                c.kwok_port,
            ]
        };
        let mut all: Vec<u16> = ALL.iter().flat_map(|c| ports(c)).collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "two components share a port");
        assert_eq!(count, 14);
    }

    #[test]
    fn the_second_cluster_runs_an_older_minor() {
        let minor = |v: &str| -> u32 { v.split('.').nth(1).unwrap().parse().unwrap() };
        assert_eq!(minor(SECOND.kubernetes) + 1, minor(FIRST.kubernetes));
    }
}
