//! A Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler, all on 127.0.0.1, client-certificate auth, RBAC and admission on; one per
//! [`Cluster`].

use super::binaries::Binaries;
use super::cluster::{self, Cluster};
use super::pki::{self, Pki};
use super::process::{self, Service};
use super::state::StateDir;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Every cluster uses the same range: they are separate clusters, and the apiserver's
/// serving certificate names the range's first address.
const SERVICE_CIDR: &str = "10.96.0.0/16";

/// Components in start order (stop in reverse).
pub const COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

pub fn up(state: &StateDir, cluster: &Cluster, bins: &Binaries) -> anyhow::Result<()> {
    let pki = Pki::of(cluster, state);
    pki.ensure()?;
    let kubeconfigs = cluster.dir(state, "kubeconfigs")?;
    write_admin_kubeconfigs(state)?;
    pki.write_kubeconfig(
        &pki::CONTROLLER_MANAGER,
        &kubeconfigs.join("kube-controller-manager"),
    )?;
    pki.write_kubeconfig(&pki::SCHEDULER, &kubeconfigs.join("kube-scheduler"))?;
    pki.write_kubeconfig(&pki::KWOK, &kubeconfigs.join("kwok"))?;

    etcd(state, cluster, bins)?;
    apiserver(state, cluster, bins, &pki)?;
    controller_manager(
        state,
        cluster,
        bins,
        &pki,
        &kubeconfigs.join("kube-controller-manager"),
    )?;
    scheduler(state, cluster, bins, &kubeconfigs.join("kube-scheduler"))?;
    Ok(())
}

/// Writes every cluster's own admin kubeconfig; the first cluster's also lists every other
/// cluster whose certificates exist, so one `KUBECONFIG` reaches them all by context.
/// The content depends only on the certificates, so repeated `up`s leave the files alone.
pub fn write_admin_kubeconfigs(state: &StateDir) -> anyhow::Result<()> {
    let issued: Vec<(&Cluster, Pki)> = cluster::ALL
        .into_iter()
        .map(|cluster| (cluster, Pki::of(cluster, state)))
        .filter(|(_, pki)| pki.has(&pki::ADMIN))
        .collect();
    for (cluster, own) in &issued {
        // Its own entry first: that is the file's current context.
        let mut entries = vec![own.kubeconfig_entry(&pki::ADMIN)?];
        if cluster.context == cluster::FIRST.context {
            for (other, pki) in &issued {
                if other.context != cluster.context {
                    entries.push(pki.kubeconfig_entry(&pki::ADMIN)?);
                }
            }
        }
        pki::write_kubeconfig(&entries, &cluster.kubeconfig(state))?;
    }
    Ok(())
}

fn etcd(state: &StateDir, cluster: &Cluster, bins: &Binaries) -> anyhow::Result<()> {
    let data = cluster.dir(state, "etcd")?;
    let addr = cluster.etcd_addr();
    let peer = format!("http://127.0.0.1:{}", cluster.etcd_peer_port);
    let mut command = Command::new(&bins.etcd);
    command
        .arg("--name=wactl")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-client-urls=http://{addr}"))
        .arg(format!("--advertise-client-urls=http://{addr}"))
        .arg(format!("--listen-peer-urls={peer}"))
        .arg(format!("--initial-advertise-peer-urls={peer}"))
        .arg(format!("--initial-cluster=wactl={peer}"))
        .arg(format!(
            "--listen-metrics-urls=http://127.0.0.1:{}",
            cluster.etcd_metrics_port
        ))
        // A disposable test cluster: fsync only slows every write down.
        .arg("--unsafe-no-fsync")
        .arg("--log-level=warn");
    Service {
        component: &cluster.component("etcd"),
        addr: &addr,
        command,
        ready: &|| etcd_healthy(cluster),
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

fn etcd_healthy(cluster: &Cluster) -> bool {
    curl_ok(&format!("http://{}/health", cluster.etcd_addr()), &[])
}

fn apiserver(
    state: &StateDir,
    cluster: &Cluster,
    bins: &Binaries,
    pki: &Pki,
) -> anyhow::Result<()> {
    let mut command = Command::new(&bins.kube_apiserver);
    command
        .arg(format!("--etcd-servers=http://{}", cluster.etcd_addr()))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={}", cluster.apiserver_port))
        .arg(arg("--tls-cert-file", &pki.cert(&pki::APISERVER)))
        .arg(arg("--tls-private-key-file", &pki.key(&pki::APISERVER)))
        .arg(arg("--client-ca-file", &pki.ca_cert()))
        .arg("--authorization-mode=Node,RBAC")
        // As on real clusters: Pod Security admission, not this flag, rejects privileged pods.
        .arg("--allow-privileged=true")
        // ServiceAccount and PodSecurity are default admission plugins; NodeRestriction is not.
        .arg("--enable-admission-plugins=NodeRestriction")
        .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
        .arg(arg(
            "--service-account-key-file",
            &pki.service_account_pub(),
        ))
        .arg(arg(
            "--service-account-signing-key-file",
            &pki.service_account_key(),
        ))
        .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
        // The `kubernetes` Service would point at 127.0.0.1, which EndpointSlices reject.
        .arg("--endpoint-reconciler-type=none")
        .arg("--profiling=false");
    let admin = admin_curl_args(pki);
    Service {
        component: &cluster.component("kube-apiserver"),
        addr: &cluster.apiserver_addr(),
        command,
        ready: &|| apiserver_ready(cluster, &admin),
        start_timeout: Duration::from_secs(120),
    }
    .ensure(state)
}

fn apiserver_ready(cluster: &Cluster, admin: &[String]) -> bool {
    curl_ok(&format!("{}/readyz", cluster.apiserver_url()), admin)
}

fn controller_manager(
    state: &StateDir,
    cluster: &Cluster,
    bins: &Binaries,
    pki: &Pki,
    kubeconfig: &Path,
) -> anyhow::Result<()> {
    let mut command = Command::new(&bins.kube_controller_manager);
    command
        .arg(arg("--kubeconfig", kubeconfig))
        .arg(arg("--authentication-kubeconfig", kubeconfig))
        .arg(arg("--authorization-kubeconfig", kubeconfig))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", cluster.controller_manager_port))
        .arg(arg(
            "--service-account-private-key-file",
            &pki.service_account_key(),
        ))
        .arg(arg("--root-ca-file", &pki.ca_cert()))
        .arg("--use-service-account-credentials=true")
        .arg(arg("--cluster-signing-cert-file", &pki.ca_cert()))
        .arg(arg("--cluster-signing-key-file", &pki.ca_key()))
        .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
        .arg(format!("--cluster-name={}", cluster.context))
        // No cloud here: the cloud controllers would only log that they have nothing to do.
        .arg(
            "--controllers=*,-cloud-node-lifecycle-controller,-service-lb-controller,\
             -node-route-controller",
        )
        // kwok renews its nodes' leases from the same 2 busy cores as the builds; a late
        // renewal must not mark the nodes NotReady in the middle of a test.
        .arg("--node-monitor-grace-period=5m")
        .arg("--leader-elect=false")
        .arg("--profiling=false");
    let addr = cluster.controller_manager_addr();
    Service {
        component: &cluster.component("kube-controller-manager"),
        addr: &addr,
        command,
        ready: &|| healthz_ok(&addr),
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

/// The controller manager's and scheduler's `/healthz`, whose self-signed serving
/// certificates nothing needs to trust.
fn healthz_ok(addr: &str) -> bool {
    curl_ok(&format!("https://{addr}/healthz"), &["-k".into()])
}

fn scheduler(
    state: &StateDir,
    cluster: &Cluster,
    bins: &Binaries,
    kubeconfig: &Path,
) -> anyhow::Result<()> {
    let mut command = Command::new(&bins.kube_scheduler);
    command
        .arg(arg("--kubeconfig", kubeconfig))
        .arg(arg("--authentication-kubeconfig", kubeconfig))
        .arg(arg("--authorization-kubeconfig", kubeconfig))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", cluster.scheduler_port))
        .arg("--leader-elect=false")
        .arg("--profiling=false");
    let addr = cluster.scheduler_addr();
    Service {
        component: &cluster.component("kube-scheduler"),
        addr: &addr,
        command,
        ready: &|| healthz_ok(&addr),
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

pub fn down(state: &StateDir, cluster: &Cluster) -> anyhow::Result<()> {
    for component in COMPONENTS.iter().rev().map(|c| cluster.component(c)) {
        if process::stop(state, &component, Duration::from_secs(20))? {
            eprintln!("infra: {component:<25} stopped");
        }
    }
    Ok(())
}

pub fn status(state: &StateDir, cluster: &Cluster) -> Vec<String> {
    let admin = admin_curl_args(&Pki::of(cluster, state));
    let line = |base: &str, addr: String, up: bool| {
        super::component_status(state, &cluster.component(base), &addr, up)
    };
    let controller_manager = cluster.controller_manager_addr();
    let scheduler = cluster.scheduler_addr();
    vec![
        line("etcd", cluster.etcd_addr(), etcd_healthy(cluster)),
        line(
            "kube-apiserver",
            format!("{} ({})", cluster.apiserver_addr(), cluster.kubernetes),
            apiserver_ready(cluster, &admin),
        ),
        line(
            "kube-controller-manager",
            controller_manager.clone(),
            healthz_ok(&controller_manager),
        ),
        line("kube-scheduler", scheduler.clone(), healthz_ok(&scheduler)),
    ]
}

/// curl arguments that authenticate as the cluster admin.
pub fn admin_curl_args(pki: &Pki) -> Vec<String> {
    let path = |p: std::path::PathBuf| p.display().to_string();
    vec![
        "--cacert".into(),
        path(pki.ca_cert()),
        "--cert".into(),
        path(pki.cert(&pki::ADMIN)),
        "--key".into(),
        path(pki.key(&pki::ADMIN)),
    ]
}

fn arg(flag: &str, path: &Path) -> String {
    format!("{flag}={}", path.display())
}

/// True when `url` answers 2xx within two seconds. curl speaks TLS with client certificates,
/// which std cannot.
pub fn curl_ok(url: &str, extra: &[String]) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "2"])
        .args(extra)
        .arg(url)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
