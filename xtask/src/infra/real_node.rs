//! The real node (`infra up --real-node`): a kubelet, kube-proxy and CoreDNS on this machine,
//! running pods in containerd with runc, so deployed images really start, pass their probes
//! and answer through a NodePort on 127.0.0.1.
//!
//! It lives beside the kwok nodes without disturbing them: kwok only adopts nodes annotated
//! `kwok.x-k8s.io/node=fake`, and this node carries the taint [`TAINT_KEY`], so only pods
//! that tolerate it and select [`NODE_LABEL`] land here. See docs/testing.md, "Real node".

use super::binaries::{self, Binaries, NodeBinaries};
use super::cluster::FIRST;
use super::control_plane::curl_ok;
use super::pki::{self, Pki};
use super::process::{self, Service};
use super::state::{StateDir, write_if_changed};
use anyhow::{Context, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Node object's name (and the kubelet's hostname override).
pub const NODE_NAME: &str = "real-node-0";
/// The label a workload selects to run here.
pub const NODE_LABEL: (&str, &str) = ("wactl.dev/node", "real");
/// The NoSchedule taint that keeps every other workload (all the kwok tests) away.
pub const TAINT_KEY: &str = "wactl.dev/real-node";
/// The pause image pod sandboxes run, compiled here and imported into containerd.
pub const PAUSE_IMAGE: &str = "wactl.local/pause:3.10";

/// The CNI bridge; its address is the node IP and the pods' DNS server.
const BRIDGE: &str = "wactl0";
const GATEWAY: &str = "10.88.0.1";
const POD_CIDR: &str = "10.88.0.0/16";
/// containerd's state, socket and runc root: fixed (like the ports), outside dockerd's
/// `/run/containerd`, so Docker's own containerd is never touched.
const CONTAINERD_RUN: &str = "/run/wactl-containerd";
const CNI_BIN_DIR: &str = "/usr/lib/cni";

const KUBELET_ADDR: &str = "127.0.0.1:10250";
const KUBELET_HEALTHZ: &str = "http://127.0.0.1:10248/healthz";
const KUBE_PROXY_ADDR: &str = "127.0.0.1:10256";
const DNS_ADDR: &str = "10.88.0.1:53";
const DNS_READY: &str = "http://127.0.0.1:10255/ready";

/// Images the `dev-real` environment's components pull from the local registry.
const COMPONENT_IMAGES: &[&str] = &[
    "wactl.local/postgres:15",
    "wactl.local/redis:7",
    "wactl.local/prometheus:2",
];

const TOOLS: &[crate::tools::Tool] = &[
    crate::tools::Tool {
        program: "containerd",
        package: "containerd",
    },
    crate::tools::Tool {
        program: "runc",
        package: "runc",
    },
    crate::tools::Tool {
        program: "conntrack",
        package: "conntrack",
    },
    crate::tools::Tool {
        program: "iptables",
        package: "iptables",
    },
    crate::tools::Tool {
        program: "ip",
        package: "iproute2",
    },
    crate::tools::Tool {
        program: "gcc",
        package: "gcc",
    },
];

fn socket() -> String {
    format!("{CONTAINERD_RUN}/containerd.sock")
}

pub fn up(state: &StateDir, bins: &Binaries) -> anyhow::Result<()> {
    crate::tools::ensure(TOOLS)?;
    if !Path::new(CNI_BIN_DIR).join("bridge").is_file() {
        crate::tools::apt_install(&["containernetworking-plugins", "libc6-dev"])?;
    }
    let node_bins = binaries::ensure_node()?;
    host_settings()?;
    let dir = state.dir("real-node")?;
    let pki = Pki::at(state);
    for (leaf, file) in [
        (&pki::KUBELET, "kubelet"),
        (&pki::KUBE_PROXY, "kube-proxy"),
        (&pki::COREDNS, "coredns"),
    ] {
        pki.ensure_leaf(leaf)?;
        pki.write_kubeconfig(leaf, &state.dir("kubeconfigs")?.join(file))?;
    }
    containerd(state, &dir)?;
    pause_image(&dir)?;
    coredns(state, &dir, &node_bins)?;
    kubelet(state, &dir, &node_bins, &pki)?;
    kube_proxy(state, &dir, &node_bins)?;
    node_ready(state, bins)?;
    push_component_images(&dir.join("containerd/certs.d"))?;
    dev_real_prerequisites(state, bins)?;
    eprintln!(
        "infra: real node    Ready: {NODE_NAME} (label {}={}, taint {TAINT_KEY}:NoSchedule)",
        NODE_LABEL.0, NODE_LABEL.1
    );
    Ok(())
}

/// What this machine needs before a kubelet can run pods: IP forwarding, bridged traffic
/// through iptables (Service IPs between pods on one bridge), the bridge itself (its address
/// is the node IP, which must not be loopback), and a name for the node the apiserver can
/// dial (`kubectl logs`, `exec`).
fn host_settings() -> anyhow::Result<()> {
    for (path, value) in [
        ("/proc/sys/net/ipv4/ip_forward", "1"),
        ("/proc/sys/net/bridge/bridge-nf-call-iptables", "1"),
        ("/proc/sys/net/ipv4/conf/all/route_localnet", "1"),
    ] {
        let current = std::fs::read_to_string(path).unwrap_or_default();
        if current.trim() != value {
            std::fs::write(path, value)
                .with_context(|| format!("setting {path} to {value} (is br_netfilter loaded?)"))?;
        }
    }
    if !Command::new("ip")
        .args(["link", "show", BRIDGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success()
    {
        run(Command::new("ip").args(["link", "add", BRIDGE, "type", "bridge"]))?;
    }
    let addrs = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", BRIDGE])
        .output()?;
    if !String::from_utf8_lossy(&addrs.stdout).contains(&format!("{GATEWAY}/16")) {
        run(Command::new("ip").args(["addr", "add", &format!("{GATEWAY}/16"), "dev", BRIDGE]))?;
    }
    run(Command::new("ip").args(["link", "set", BRIDGE, "up"]))?;
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if !hosts_has(&hosts, NODE_NAME) {
        let mut text = hosts;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("127.0.0.1 {NODE_NAME}\n"));
        std::fs::write("/etc/hosts", text).context("adding the node's name to /etc/hosts")?;
    }
    Ok(())
}

/// True when an `/etc/hosts` line maps `name` (to anything).
fn hosts_has(hosts: &str, name: &str) -> bool {
    hosts.lines().any(|line| {
        let line = line.split('#').next().unwrap_or_default();
        line.split_whitespace().skip(1).any(|n| n == name)
    })
}

fn containerd(state: &StateDir, dir: &Path) -> anyhow::Result<()> {
    let certs = dir.join("containerd/certs.d");
    write_if_changed(
        &certs.join("127.0.0.1:5000/hosts.toml"),
        registry_hosts_toml(super::registry::OPEN_ADDR).as_bytes(),
    )?;
    let cni = dir.join("cni/net.d");
    write_if_changed(&cni.join("10-wactl.conflist"), cni_conflist().as_bytes())?;
    let config = dir.join("containerd/config.toml");
    write_if_changed(
        &config,
        containerd_config(&dir.join("containerd/root"), &certs, &cni).as_bytes(),
    )?;
    let mut command = Command::new("containerd");
    command.arg(format!("--config={}", config.display()));
    Service {
        component: "containerd",
        addr: &socket(),
        command,
        ready: &|| ctr(&["version"]).is_ok(),
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

fn registry_hosts_toml(addr: &str) -> String {
    format!(
        "# written by `cargo xtask infra up --real-node`: the local registry speaks plain HTTP\n\
         server = \"http://{addr}\"\n\n[host.\"http://{addr}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    )
}

/// containerd 1.6 (Debian) as a second instance with its own root, state and socket.
/// `restrict_oom_score_adj`: this machine drops CAP_SYS_RESOURCE, so no process may lower
/// its OOM score, and the -998 kubelet asks for the sandbox fails runc with
/// "can't get final child's PID from pipe: EOF"; restricted, it stays at containerd's own.
fn containerd_config(root: &Path, certs: &Path, cni: &Path) -> String {
    format!(
        r#"# written by `cargo xtask infra up --real-node`
version = 2
root = "{root}"
state = "{CONTAINERD_RUN}"

[grpc]
  address = "{CONTAINERD_RUN}/containerd.sock"

[ttrpc]
  address = "{CONTAINERD_RUN}/containerd.sock.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{CONTAINERD_RUN}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
        root = root.display(),
        cni = cni.display(),
        certs = certs.display(),
    )
}

/// The pods' network. `firewall` accepts each pod's traffic in the FORWARD chain, whose
/// policy Docker sets to DROP (with bridged traffic going through iptables, pod-to-pod
/// connections on the one bridge were dropped).
fn cni_conflist() -> String {
    format!(
        r#"{{
  "cniVersion": "1.0.0",
  "name": "wactl",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{BRIDGE}",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{ "subnet": "{POD_CIDR}", "gateway": "{GATEWAY}" }}]],
        "routes": [{{ "dst": "0.0.0.0/0" }}]
      }}
    }},
    {{ "type": "portmap", "capabilities": {{ "portMappings": true }} }},
    {{ "type": "firewall", "backend": "iptables" }},
    {{ "type": "loopback" }}
  ]
}}
"#
    )
}

/// `ctr` against infra's containerd, in the CRI namespace.
fn ctr(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ctr")
        .args(["--address", &socket(), "--namespace", "k8s.io"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ctr")?;
    if !out.status.success() {
        bail!(
            "ctr {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The sandbox image: a static C program that holds the pod's namespaces and reaps
/// zombies, `FROM scratch`, built with Docker and imported into containerd (nothing can
/// be pulled here).
fn pause_image(dir: &Path) -> anyhow::Result<()> {
    if ctr(&["images", "ls", "-q"])?
        .lines()
        .any(|image| image == PAUSE_IMAGE)
    {
        return Ok(());
    }
    let build = dir.join("pause");
    write_if_changed(
        &build.join("pause.c"),
        include_bytes!("../../assets/infra/real-node/pause.c"),
    )?;
    write_if_changed(
        &build.join("Dockerfile"),
        b"FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT [\"/pause\"]\n",
    )?;
    run(Command::new("gcc")
        .args(["-Os", "-static", "-s", "-o"])
        .arg(build.join("pause"))
        .arg(build.join("pause.c")))?;
    run(Command::new("docker")
        .args(["build", "--quiet", "--tag", PAUSE_IMAGE])
        .arg(&build)
        .env("DOCKER_BUILDKIT", "0"))?;
    let tar = build.join("pause.tar");
    run(Command::new("docker")
        .args(["save", "--output"])
        .arg(&tar)
        .arg(PAUSE_IMAGE))?;
    ctr(&["images", "import", &tar.display().to_string()])?;
    eprintln!("infra: pause image  {PAUSE_IMAGE} built and imported into containerd");
    Ok(())
}

/// Cluster DNS for the pods: CoreDNS on the bridge address, the only one pods can reach on
/// the host (it is not routed anywhere off this machine). Health and readiness on loopback.
fn coredns(state: &StateDir, dir: &Path, node_bins: &NodeBinaries) -> anyhow::Result<()> {
    let corefile = dir.join("Corefile");
    write_if_changed(
        &corefile,
        format!(
            ".:53 {{\n    bind {GATEWAY}\n    errors\n    health 127.0.0.1:10254\n    \
             ready 127.0.0.1:10255\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        \
             kubeconfig {} {}\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        \
             ttl 5\n    }}\n    forward . /etc/resolv.conf\n    cache 5\n}}\n",
            state.join("kubeconfigs/coredns").display(),
            pki::CONTEXT
        )
        .as_bytes(),
    )?;
    let mut command = Command::new(&node_bins.coredns);
    command.arg("-conf").arg(&corefile);
    Service {
        component: "coredns",
        addr: DNS_ADDR,
        command,
        ready: &|| curl_ok(DNS_READY, &[]),
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

fn kubelet(
    state: &StateDir,
    dir: &Path,
    node_bins: &NodeBinaries,
    pki: &Pki,
) -> anyhow::Result<()> {
    let config = dir.join("kubelet.yaml");
    // The pods' resolv.conf names the cluster DNS; the host's (a resolver on the VM's
    // network) is only what CoreDNS forwards to.
    write_if_changed(&config, kubelet_config(&pki.ca_cert()).as_bytes())?;
    let mut command = Command::new(&node_bins.kubelet);
    command
        .arg(format!("--config={}", config.display()))
        .arg(format!(
            "--kubeconfig={}",
            state.join("kubeconfigs/kubelet").display()
        ))
        .arg(format!("--hostname-override={NODE_NAME}"))
        .arg(format!("--node-ip={GATEWAY}"))
        .arg(format!(
            "--root-dir={}",
            state.dir("real-node/kubelet")?.display()
        ))
        .arg(format!(
            "--cert-dir={}",
            state.dir("real-node/kubelet-pki")?.display()
        ))
        .arg(format!("--node-labels={}={}", NODE_LABEL.0, NODE_LABEL.1))
        .arg("--v=1");
    Service {
        component: "kubelet",
        addr: KUBELET_ADDR,
        command,
        ready: &|| curl_ok(KUBELET_HEALTHZ, &[]),
        start_timeout: Duration::from_secs(90),
    }
    .ensure(state)
}

/// The kubelet's settings; each line that departs from the defaults says why.
fn kubelet_config(ca: &Path) -> String {
    format!(
        r#"# written by `cargo xtask infra up --real-node`
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Loopback only; the apiserver reaches it as {NODE_NAME} (an /etc/hosts name for 127.0.0.1).
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# The apiserver has no kubelet client certificate, so logs/exec arrive anonymous; the
# kubelet listens on loopback only.
authentication:
  anonymous: {{ enabled: true }}
  webhook: {{ enabled: false }}
  x509: {{ clientCAFile: {ca} }}
authorization:
  mode: AlwaysAllow
# This machine runs cgroup v1 (hybrid), which kubelet 1.35+ refuses unless told otherwise,
# and Docker's cgroupfs driver (no systemd inside the VM).
cgroupDriver: cgroupfs
failCgroupV1: false
# No swap here; the check stays off so a machine with swap still starts the node.
failSwapOn: false
containerRuntimeEndpoint: unix://{CONTAINERD_RUN}/containerd.sock
clusterDomain: cluster.local
clusterDNS: [{GATEWAY}]
maxPods: 50
serializeImagePulls: false
# A shared disk that other work fills: evict only when it is really full, and never
# collect images (the pause image is imported, not pullable).
imageGCHighThresholdPercent: 100
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
registerWithTaints:
  - {{ key: {TAINT_KEY}, value: "true", effect: NoSchedule }}
shutdownGracePeriod: 0s
"#,
        ca = ca.display()
    )
}

fn kube_proxy(state: &StateDir, dir: &Path, node_bins: &NodeBinaries) -> anyhow::Result<()> {
    let config = dir.join("kube-proxy.yaml");
    write_if_changed(
        &config,
        format!(
            "# written by `cargo xtask infra up --real-node`\n\
             apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
             clientConnection:\n  kubeconfig: {}\nhostnameOverride: {NODE_NAME}\nmode: iptables\n\
             clusterCIDR: {POD_CIDR}\nbindAddress: 127.0.0.1\n\
             healthzBindAddress: {KUBE_PROXY_ADDR}\nmetricsBindAddress: 127.0.0.1:10249\n\
             # NodePorts answer on 127.0.0.1 only (needs route_localnet, which kube-proxy sets).\n\
             nodePortAddresses: [\"127.0.0.0/8\"]\n\
             iptables:\n  localhostNodePorts: true\n\
             # Leave the host's conntrack table size alone.\n\
             conntrack:\n  maxPerCore: 0\n",
            state.join("kubeconfigs/kube-proxy").display()
        )
        .as_bytes(),
    )?;
    let mut command = Command::new(&node_bins.kube_proxy);
    command
        .arg(format!("--config={}", config.display()))
        .arg("--v=1");
    Service {
        component: "kube-proxy",
        addr: KUBE_PROXY_ADDR,
        command,
        ready: &|| curl_ok(&format!("http://{KUBE_PROXY_ADDR}/healthz"), &[]),
        start_timeout: Duration::from_secs(60),
    }
    .ensure(state)
}

/// Labels and taints the node (again, in case the Node object predates them) and waits
/// until it is Ready.
fn node_ready(state: &StateDir, bins: &Binaries) -> anyhow::Result<()> {
    let kubectl = |args: &[&str]| -> anyhow::Result<()> {
        let out = super::kwok::kubectl(state, &FIRST, bins)
            .args(args)
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    process::wait_for(
        &format!("node {NODE_NAME} to register"),
        Duration::from_secs(60),
        || Ok(kubectl(&["get", "node", NODE_NAME]).is_ok()),
    )
    .with_context(|| format!("see {}", state.log("kubelet").display()))?;
    kubectl(&[
        "label",
        "node",
        NODE_NAME,
        "--overwrite",
        &format!("{}={}", NODE_LABEL.0, NODE_LABEL.1),
    ])?;
    kubectl(&[
        "taint",
        "node",
        NODE_NAME,
        "--overwrite",
        &format!("{TAINT_KEY}=true:NoSchedule"),
    ])?;
    kubectl(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=90s",
        &format!("node/{NODE_NAME}"),
    ])
    .with_context(|| format!("see {}", state.log("kubelet").display()))
}

/// Pushes the component images `dev-real` runs to the local registry (a push of layers the
/// registry has is a no-op) and pulls them into containerd. Images that were never made are skipped with a hint.
fn push_component_images(certs: &Path) -> anyhow::Result<()> {
    for image in COMPONENT_IMAGES {
        let present = Command::new("docker")
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success();
        if !present {
            eprintln!(
                "infra: {image} is missing; run `cargo xtask infra images` for dev-real's components"
            );
            continue;
        }
        let target = format!("{}/{image}", super::registry::OPEN_ADDR);
        run(Command::new("docker").args(["tag", image, &target]))?;
        run(Command::new("docker").args(["push", "--quiet", &target]))?;
        // The pods pull with IfNotPresent: refresh containerd's copy of the tag so a rebuilt
        // image replaces the one the node already has.
        ctr(&[
            "images",
            "pull",
            "--hosts-dir",
            &certs.display().to_string(),
            &target,
        ])?;
    }
    Ok(())
}

/// The `dev-real` environment's namespace.
pub const DEV_REAL_NAMESPACE: &str = "world-address-dev-real";

/// What an administrator gives `dev-real` before its first deploy, as on any cluster without
/// a volume provisioner or a secret store: the namespace, the Secret `address-service-postgres`
/// (`password` for postgres, `url` for the service; the password is generated once and kept
/// in the state dir) and one hostPath volume per StatefulSet claim, world-writable because
/// hostPath volumes ignore `fsGroup`.
fn dev_real_prerequisites(state: &StateDir, bins: &Binaries) -> anyhow::Result<()> {
    let dir = state.dir("real-node")?;
    let password_file = dir.join("postgres-password");
    let password = match std::fs::read_to_string(&password_file) {
        Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
        _ => {
            let password = super::state::random_hex(16)?;
            std::fs::write(&password_file, &password)?;
            std::fs::set_permissions(
                &password_file,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )?;
            password
        }
    };
    let mut manifest = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {DEV_REAL_NAMESPACE}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: address-service-postgres\n  \
         namespace: {DEV_REAL_NAMESPACE}\nstringData:\n  password: \"{password}\"\n  \
         url: \"postgres://address:{password}@address-service-postgres:5432/address\"\n"
    );
    for claim in [
        "data-address-service-postgres-0",
        "data-address-service-redis-0",
    ] {
        let path = dir.join("volumes").join(claim);
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: PersistentVolume\nmetadata:\n  \
             name: {DEV_REAL_NAMESPACE}-{claim}\nspec:\n  capacity: {{ storage: 10Gi }}\n  \
             accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  \
             hostPath: {{ path: {} }}\n  \
             claimRef: {{ namespace: {DEV_REAL_NAMESPACE}, name: {claim} }}\n",
            path.display()
        ));
    }
    super::kwok::kubectl_apply(state, &FIRST, bins, &manifest)
}

/// Stops the node: kube-proxy (and its iptables rules), the kubelet, CoreDNS, every pod's
/// containers, then containerd; removes the Node object so its pods are collected.
pub fn down(state: &StateDir) -> anyhow::Result<()> {
    let cache = binaries::cache_dir()?;
    let node_bins = binaries::cached_node(&cache);
    let mut stopped = false;
    if process::stop(state, "kube-proxy", Duration::from_secs(10))? {
        stopped = true;
        let config = state.join("real-node/kube-proxy.yaml");
        let _ = Command::new(&node_bins.kube_proxy)
            .arg(format!("--config={}", config.display()))
            .arg("--cleanup")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    stopped |= process::stop(state, "kubelet", Duration::from_secs(20))?;
    stopped |= process::stop(state, "coredns", Duration::from_secs(10))?;
    if process::liveness(state, "containerd") != process::Liveness::Absent {
        if let Ok(tasks) = ctr(&["tasks", "ls", "-q"]) {
            for task in tasks.lines().filter(|t| !t.is_empty()) {
                let _ = ctr(&["tasks", "kill", "--signal", "SIGKILL", task]);
                let _ = ctr(&["tasks", "delete", "--force", task]);
            }
        }
        stopped |= process::stop(state, "containerd", Duration::from_secs(20))?;
    }
    if stopped {
        let bins = binaries::cached(&cache, binaries::KUBERNETES_VERSION);
        let _ = super::kwok::kubectl(state, &FIRST, &bins)
            .args([
                "delete",
                "node",
                NODE_NAME,
                "--ignore-not-found",
                "--wait=false",
                "--request-timeout=5s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        eprintln!("infra: real node    stopped");
    }
    Ok(())
}

pub fn status(state: &StateDir) -> Vec<String> {
    let line =
        |component: &str, addr: &str, up: bool| super::component_status(state, component, addr, up);
    vec![
        line("containerd", &socket(), ctr(&["version"]).is_ok()),
        line("coredns", DNS_ADDR, curl_ok(DNS_READY, &[])),
        line("kubelet", KUBELET_ADDR, curl_ok(KUBELET_HEALTHZ, &[])),
        line(
            "kube-proxy",
            KUBE_PROXY_ADDR,
            curl_ok(&format!("http://{KUBE_PROXY_ADDR}/healthz"), &[]),
        ),
    ]
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lookup_matches_names_not_substrings() {
        let hosts = "127.0.0.1 localhost\n# 127.0.0.1 real-node-0\n127.0.0.1 real-node-01\n";
        assert!(!hosts_has(hosts, NODE_NAME));
        assert!(hosts_has(
            &format!("{hosts}127.0.0.1 x {NODE_NAME}\n"),
            NODE_NAME
        ));
    }

    #[test]
    fn kubelet_runs_on_cgroup_v1_with_the_taint_and_cluster_dns() {
        let config = kubelet_config(Path::new("/pki/ca.crt"));
        assert!(config.contains("failCgroupV1: false\n"));
        assert!(config.contains("cgroupDriver: cgroupfs\n"));
        assert!(config.contains("failSwapOn: false\n"));
        assert!(config.contains(&format!(
            "key: {TAINT_KEY}, value: \"true\", effect: NoSchedule"
        )));
        assert!(config.contains(&format!("clusterDNS: [{GATEWAY}]")));
        assert!(config.contains("address: 127.0.0.1\n"));
    }

    #[test]
    fn containerd_is_a_separate_instance_that_pulls_over_http_from_the_local_registry() {
        let config = containerd_config(
            Path::new("/s/root"),
            Path::new("/s/certs.d"),
            Path::new("/s/net.d"),
        );
        assert!(config.contains("address = \"/run/wactl-containerd/containerd.sock\""));
        assert!(!config.contains("\"/run/containerd"));
        assert!(config.contains("restrict_oom_score_adj = true"));
        assert!(config.contains("config_path = \"/s/certs.d\""));
        let hosts = registry_hosts_toml("127.0.0.1:5000");
        assert!(hosts.contains("server = \"http://127.0.0.1:5000\""));
    }

    #[test]
    fn cni_config_is_json_with_the_bridge_on_the_gateway() {
        let conf: serde_json::Value = serde_json::from_str(&cni_conflist()).unwrap();
        assert_eq!(conf["plugins"][0]["bridge"], BRIDGE);
        assert_eq!(
            conf["plugins"][0]["ipam"]["ranges"][0][0]["gateway"],
            GATEWAY
        );
    }
}
