//! The Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler, all on 127.0.0.1, client-certificate auth, RBAC and admission on.

use super::binaries::Binaries;
use super::pki::{self, Pki};
use super::process::{self, Service};
use super::state::StateDir;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const ETCD_ADDR: &str = "127.0.0.1:2379";
pub const APISERVER_ADDR: &str = "127.0.0.1:6443";
pub const CONTROLLER_MANAGER_ADDR: &str = "127.0.0.1:10257";
pub const SCHEDULER_ADDR: &str = "127.0.0.1:10259";
const SERVICE_CIDR: &str = "10.96.0.0/16";

/// Components in start order (stop in reverse).
pub const COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

pub fn up(state: &StateDir, bins: &Binaries) -> anyhow::Result<()> {
    let pki = Pki::at(state);
    pki.ensure()?;
    let kubeconfigs = state.dir("kubeconfigs")?;
    pki.write_kubeconfig(&pki::ADMIN, &state.kubeconfig())?;
    pki.write_kubeconfig(
        &pki::CONTROLLER_MANAGER,
        &kubeconfigs.join("kube-controller-manager"),
    )?;
    pki.write_kubeconfig(&pki::SCHEDULER, &kubeconfigs.join("kube-scheduler"))?;
    pki.write_kubeconfig(&pki::KWOK, &kubeconfigs.join("kwok"))?;

    etcd(state, bins)?;
    apiserver(state, bins, &pki)?;
    controller_manager(
        state,
        bins,
        &pki,
        &kubeconfigs.join("kube-controller-manager"),
    )?;
    scheduler(state, bins, &kubeconfigs.join("kube-scheduler"))?;
    Ok(())
}

fn etcd(state: &StateDir, bins: &Binaries) -> anyhow::Result<()> {
    let data = state.dir("etcd")?;
    let mut command = Command::new(&bins.etcd);
    command
        .arg("--name=wactl")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-client-urls=http://{ETCD_ADDR}"))
        .arg(format!("--advertise-client-urls=http://{ETCD_ADDR}"))
        .arg("--listen-peer-urls=http://127.0.0.1:2380")
        .arg("--initial-advertise-peer-urls=http://127.0.0.1:2380")
        .arg("--initial-cluster=wactl=http://127.0.0.1:2380")
        .arg("--listen-metrics-urls=http://127.0.0.1:2381")
        // A disposable test cluster: fsync only slows every write down.
        .arg("--unsafe-no-fsync")
        .arg("--log-level=warn");
    Service {
        component: "etcd",
        addr: ETCD_ADDR,
        command,
        ready: &etcd_healthy,
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

fn etcd_healthy() -> bool {
    curl_ok(&format!("http://{ETCD_ADDR}/health"), &[])
}

fn apiserver(state: &StateDir, bins: &Binaries, pki: &Pki) -> anyhow::Result<()> {
    let mut command = Command::new(&bins.kube_apiserver);
    command
        .arg(format!("--etcd-servers=http://{ETCD_ADDR}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg("--secure-port=6443")
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
    let ready = || curl_ok(&format!("https://{APISERVER_ADDR}/readyz"), &admin);
    Service {
        component: "kube-apiserver",
        addr: APISERVER_ADDR,
        command,
        ready: &ready,
        start_timeout: Duration::from_secs(120),
    }
    .ensure(state)
}

fn controller_manager(
    state: &StateDir,
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
        .arg("--secure-port=10257")
        .arg(arg(
            "--service-account-private-key-file",
            &pki.service_account_key(),
        ))
        .arg(arg("--root-ca-file", &pki.ca_cert()))
        .arg("--use-service-account-credentials=true")
        .arg(arg("--cluster-signing-cert-file", &pki.ca_cert()))
        .arg(arg("--cluster-signing-key-file", &pki.ca_key()))
        .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
        .arg("--cluster-name=wactl-dev")
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
    Service {
        component: "kube-controller-manager",
        addr: CONTROLLER_MANAGER_ADDR,
        command,
        ready: &|| {
            curl_ok(
                &format!("https://{CONTROLLER_MANAGER_ADDR}/healthz"),
                &["-k".into()],
            )
        },
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

fn scheduler(state: &StateDir, bins: &Binaries, kubeconfig: &Path) -> anyhow::Result<()> {
    let mut command = Command::new(&bins.kube_scheduler);
    command
        .arg(arg("--kubeconfig", kubeconfig))
        .arg(arg("--authentication-kubeconfig", kubeconfig))
        .arg(arg("--authorization-kubeconfig", kubeconfig))
        .arg("--bind-address=127.0.0.1")
        .arg("--secure-port=10259")
        .arg("--leader-elect=false")
        .arg("--profiling=false");
    Service {
        component: "kube-scheduler",
        addr: SCHEDULER_ADDR,
        command,
        ready: &|| curl_ok(&format!("https://{SCHEDULER_ADDR}/healthz"), &["-k".into()]),
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

pub fn down(state: &StateDir) -> anyhow::Result<()> {
    for component in COMPONENTS.iter().rev() {
        if process::stop(state, component, Duration::from_secs(20))? {
            eprintln!("infra: {component:<23} stopped");
        }
    }
    Ok(())
}

pub fn status(state: &StateDir) -> Vec<String> {
    let admin = admin_curl_args(&Pki::at(state));
    vec![
        super::component_status(state, "etcd", ETCD_ADDR, etcd_healthy()),
        super::component_status(
            state,
            "kube-apiserver",
            APISERVER_ADDR,
            curl_ok(&format!("https://{APISERVER_ADDR}/readyz"), &admin),
        ),
        super::component_status(
            state,
            "kube-controller-manager",
            CONTROLLER_MANAGER_ADDR,
            curl_ok(
                &format!("https://{CONTROLLER_MANAGER_ADDR}/healthz"),
                &["-k".into()],
            ),
        ),
        super::component_status(
            state,
            "kube-scheduler",
            SCHEDULER_ADDR,
            curl_ok(&format!("https://{SCHEDULER_ADDR}/healthz"), &["-k".into()]),
        ),
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
