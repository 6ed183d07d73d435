//! The control plane's binaries, built with `go build` from the Go module proxy at pinned
//! versions and cached as `<cache>/bin/<name>-<version>`.

use super::gomod;
use super::state::write_if_changed;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Kubernetes release of the control plane; wactl's `k8s-openapi` feature is `v1_36`.
pub const KUBERNETES_VERSION: &str = "v1.36.3";
/// Kubernetes release of the second cluster: the newest patch of the previous minor on the
/// Go module proxy.
pub const KUBERNETES_SECOND_VERSION: &str = "v1.35.4";
pub const ETCD_VERSION: &str = "v3.6.16";
pub const KWOK_VERSION: &str = "v0.8.0";
/// DNS for pods on the real node (`infra up --real-node`).
pub const COREDNS_VERSION: &str = "v1.15.0";

/// Environment variable that moves the cache of built binaries and wrapper modules.
pub const CACHE_DIR_ENV: &str = "WACTL_CACHE_DIR";

/// Paths of the built binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kubectl: PathBuf,
    pub kwok: PathBuf,
}

/// One Go module to build binaries from.
struct GoModule {
    /// Directory name of the wrapper module under `<cache>/go/`.
    name: &'static str,
    module: &'static str,
    version: &'static str,
    /// (binary name, package path)
    binaries: &'static [(&'static str, &'static str)],
    /// Version that locally replaced sibling modules are published at, from `version`.
    sibling_version: fn(&str) -> Option<String>,
    ldflags: fn(&str) -> String,
    /// A `main.go` written into the wrapper module, whose package `.` is then built instead
    /// of one of the module's own commands.
    main_go: Option<&'static str>,
}

/// The control plane's binaries, built at whichever release a cluster runs.
const CONTROL_PLANE: &[(&str, &str)] = &[
    ("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
    (
        "kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
    ),
    ("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
];

/// The first cluster's release, with the one kubectl infra drives every cluster with (a
/// newer kubectl talks to a server one minor older).
const KUBERNETES: GoModule = GoModule {
    name: "kubernetes",
    module: "k8s.io/kubernetes",
    version: KUBERNETES_VERSION,
    binaries: &[
        CONTROL_PLANE[0],
        CONTROL_PLANE[1],
        CONTROL_PLANE[2],
        ("kubectl", "k8s.io/kubernetes/cmd/kubectl"),
    ],
    sibling_version: gomod::staging_version,
    ldflags: kubernetes_ldflags,
    main_go: None,
};

/// The node components, built from the same wrapper module only when `--real-node` asks.
const KUBERNETES_NODE: GoModule = GoModule {
    binaries: &[
        ("kubelet", "k8s.io/kubernetes/cmd/kubelet"),
        ("kube-proxy", "k8s.io/kubernetes/cmd/kube-proxy"),
    ],
    ..KUBERNETES
};

/// CoreDNS with only the plugins the real node's pods need (the full plugin set pulls in
/// every cloud SDK).
const COREDNS: GoModule = GoModule {
    name: "coredns",
    module: "github.com/coredns/coredns",
    version: COREDNS_VERSION,
    binaries: &[("coredns", ".")],
    sibling_version: |version| Some(version.to_string()),
    ldflags: |_| "-s -w".to_string(),
    main_go: Some(include_str!("../../assets/infra/real-node/coredns/main.go")),
};

const ETCD: GoModule = GoModule {
    name: "etcd",
    module: "go.etcd.io/etcd/server/v3",
    version: ETCD_VERSION,
    binaries: &[("etcd", "go.etcd.io/etcd/server/v3")],
    sibling_version: |version| Some(version.to_string()),
    ldflags: |_| "-s -w".to_string(),
    main_go: None,
};

const KWOK: GoModule = GoModule {
    name: "kwok",
    module: "sigs.k8s.io/kwok",
    version: KWOK_VERSION,
    binaries: &[("kwok", "sigs.k8s.io/kwok/cmd/kwok")],
    sibling_version: |version| Some(version.to_string()),
    ldflags: |version| format!("-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={version}"),
    main_go: None,
};

fn kubernetes_ldflags(version: &str) -> String {
    // Without these the binaries call themselves v0.0.0-master, which breaks version skew
    // checks and confuses clients.
    let (major, minor) = version.trim_start_matches('v').split('.').fold(
        (String::new(), String::new()),
        |(major, minor), part| {
            if major.is_empty() {
                (part.to_string(), minor)
            } else if minor.is_empty() {
                (major, part.to_string())
            } else {
                (major, minor)
            }
        },
    );
    [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ]
    .iter()
    .map(|pkg| {
        format!(
            "-X {pkg}.gitVersion={version} -X {pkg}.gitMajor={major} \
                 -X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean \
                 -X {pkg}.buildDate=1970-01-01T00:00:00Z"
        )
    })
    .fold("-s -w".to_string(), |acc, flags| format!("{acc} {flags}"))
}

/// The cache of expensive things keyed by version: `$WACTL_CACHE_DIR`, default
/// `$HOME/.cache/wactl`.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| PathBuf::from(home).join(".cache/wactl"))
            .context("HOME is not set; set it or WACTL_CACHE_DIR"),
    }
}

fn binary_path(cache: &Path, name: &str, version: &str) -> PathBuf {
    cache.join("bin").join(format!("{name}-{version}"))
}

/// The binaries of a control plane at Kubernetes release `kubernetes`, building whatever
/// the cache lacks. The first cluster's release is always built: its kubectl drives every
/// cluster.
pub fn ensure(kubernetes: &'static str) -> anyhow::Result<Binaries> {
    let cache = cache_dir()?;
    let go = go_tool()?;
    for module in [&ETCD, &KUBERNETES, &KWOK] {
        module.ensure_built(&cache, &go)?;
    }
    if kubernetes != KUBERNETES_VERSION {
        GoModule {
            version: kubernetes,
            binaries: CONTROL_PLANE,
            ..KUBERNETES
        }
        .ensure_built(&cache, &go)?;
    }
    Ok(cached(&cache, kubernetes))
}

/// Where the binaries of a control plane at release `kubernetes` are, built or not (for
/// `status` and `down`).
pub fn cached(cache: &Path, kubernetes: &str) -> Binaries {
    Binaries {
        etcd: binary_path(cache, "etcd", ETCD_VERSION),
        kube_apiserver: binary_path(cache, "kube-apiserver", kubernetes),
        kube_controller_manager: binary_path(cache, "kube-controller-manager", kubernetes),
        kube_scheduler: binary_path(cache, "kube-scheduler", kubernetes),
        kubectl: binary_path(cache, "kubectl", KUBERNETES_VERSION),
        kwok: binary_path(cache, "kwok", KWOK_VERSION),
    }
}

/// Paths of the real node's binaries (`infra up --real-node`).
#[derive(Debug, Clone)]
pub struct NodeBinaries {
    pub kubelet: PathBuf,
    pub kube_proxy: PathBuf,
    pub coredns: PathBuf,
}

/// The real node's binaries, building whatever the cache lacks.
pub fn ensure_node() -> anyhow::Result<NodeBinaries> {
    let cache = cache_dir()?;
    let go = go_tool()?;
    for module in [&KUBERNETES_NODE, &COREDNS] {
        module.ensure_built(&cache, &go)?;
    }
    Ok(cached_node(&cache))
}

pub fn cached_node(cache: &Path) -> NodeBinaries {
    NodeBinaries {
        kubelet: binary_path(cache, "kubelet", KUBERNETES_VERSION),
        kube_proxy: binary_path(cache, "kube-proxy", KUBERNETES_VERSION),
        coredns: binary_path(cache, "coredns", COREDNS_VERSION),
    }
}

pub(super) fn go_tool() -> anyhow::Result<PathBuf> {
    let local = PathBuf::from("/usr/local/go/bin/go");
    if local.is_file() {
        return Ok(local);
    }
    crate::tools::which("go").context(
        "Go is not installed: install Go 1.26 or newer into /usr/local/go \
         (https://go.dev/dl/); Debian's golang-go is too old for Kubernetes 1.36",
    )
}

impl GoModule {
    fn ensure_built(&self, cache: &Path, go: &Path) -> anyhow::Result<()> {
        let missing: Vec<&(&str, &str)> = self
            .binaries
            .iter()
            .filter(|(name, _)| !binary_path(cache, name, self.version).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let dir = cache
            .join("go")
            .join(format!("{}-{}", self.name, self.version));
        std::fs::create_dir_all(dir.join("out"))?;
        let log = dir.join("build.log");
        let names: Vec<&str> = missing.iter().map(|(name, _)| *name).collect();
        eprintln!(
            "infra: building {} {} with go (cold: several minutes; log {})",
            names.join(", "),
            self.version,
            log.display()
        );
        let started = Instant::now();
        self.write_wrapper(&dir, go)?;
        if let Some(main) = self.main_go {
            write_if_changed(&dir.join("main.go"), main.as_bytes())?;
        }
        let mut build = go_command(go, &dir, &log)?;
        build
            .args(["build", "-trimpath", "-ldflags"])
            .arg((self.ldflags)(self.version))
            .arg("-o");
        if missing.len() == 1 {
            build.arg(dir.join("out").join(missing[0].0));
        } else {
            build.arg(format!("{}/", dir.join("out").display()));
        }
        build.args(missing.iter().map(|(_, package)| *package));
        run_logged(build, &log)?;
        std::fs::create_dir_all(cache.join("bin"))?;
        for (name, _) in &missing {
            let built = dir.join("out").join(name);
            let target = binary_path(cache, name, self.version);
            std::fs::rename(&built, &target).with_context(|| {
                format!(
                    "moving {} to {} (see {})",
                    built.display(),
                    target.display(),
                    log.display()
                )
            })?;
        }
        eprintln!(
            "infra: built {} in {:.0}s",
            names.join(", "),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Writes `<dir>/go.mod`: requires the module at its version and replaces every sibling
    /// module its own go.mod takes from a local directory with the published version.
    fn write_wrapper(&self, dir: &Path, go: &Path) -> anyhow::Result<()> {
        let upstream_path = upstream_go_mod(go, dir, self.module, self.version)?;
        let mut edit = go_command(go, dir.parent().unwrap_or(dir), &dir.join("build.log"))?;
        edit.env_remove("GOFLAGS");
        let upstream = gomod::GoMod::read(edit, &upstream_path)?;
        let sibling =
            (self.sibling_version)(self.version).context("no published version for siblings")?;
        let replaced: Vec<(String, String)> = upstream
            .locally_replaced_requirements()
            .into_iter()
            .map(|module| (module, sibling.clone()))
            .collect();
        let go_version = upstream.go.clone().unwrap_or_else(|| "1.26.0".into());
        let text = gomod::wrapper(
            &format!("wactl.local/infra/{}", self.name),
            &go_version,
            self.module,
            self.version,
            &replaced,
        );
        write_if_changed(&dir.join("go.mod"), text.as_bytes())?;
        Ok(())
    }
}

/// Where the upstream go.mod of `module@version` is, downloaded through the module proxy.
fn upstream_go_mod(go: &Path, dir: &Path, module: &str, version: &str) -> anyhow::Result<PathBuf> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Download {
        go_mod: Option<PathBuf>,
        error: Option<String>,
    }
    // Outside any module, so the wrapper's own (possibly half-written) go.mod plays no part.
    let outside = dir.parent().context("wrapper dir without parent")?;
    let out = go_command(go, outside, &dir.join("build.log"))?
        .args(["mod", "download", "-json"])
        .arg(format!("{module}@{version}"))
        .env("GOFLAGS", "-mod=mod")
        .env("GO111MODULE", "on")
        .stdout(Stdio::piped())
        .output()
        .context("running go mod download")?;
    let info: Download = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "go mod download -json {module}@{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(error) = info.error {
        bail!("go mod download {module}@{version}: {error}");
    }
    info.go_mod.context("go mod download gave no GoMod path")
}

fn go_command(go: &Path, dir: &Path, log: &Path) -> anyhow::Result<Command> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut command = Command::new(go);
    command
        .current_dir(dir)
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .env("CGO_ENABLED", "0")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(command)
}

fn run_logged(mut command: Command, log: &Path) -> anyhow::Result<()> {
    let status = command.status().context("running go")?;
    if !status.success() {
        bail!(
            "go build failed ({status}); last lines of {}:\n{}",
            log.display(),
            super::process::log_tail(log, 20)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_version_is_stamped_into_both_version_packages() {
        let flags = kubernetes_ldflags(KUBERNETES_VERSION);
        assert!(flags.contains("-X k8s.io/component-base/version.gitVersion=v1.36.3"));
        assert!(flags.contains("-X k8s.io/component-base/version.gitMajor=1 "));
        assert!(flags.contains("-X k8s.io/client-go/pkg/version.gitMinor=36 "));
        let second = kubernetes_ldflags(KUBERNETES_SECOND_VERSION);
        assert!(second.contains("-X k8s.io/client-go/pkg/version.gitVersion=v1.35.4 "));
        assert!(second.contains("-X k8s.io/client-go/pkg/version.gitMinor=35 "));
    }

    #[test]
    fn binaries_are_keyed_by_version() {
        let bins = cached(Path::new("/c"), KUBERNETES_VERSION);
        assert_eq!(bins.etcd, Path::new("/c/bin/etcd-v3.6.16"));
        assert_eq!(
            bins.kube_apiserver,
            Path::new("/c/bin/kube-apiserver-v1.36.3")
        );
        assert_eq!(bins.kwok, Path::new("/c/bin/kwok-v0.8.0"));
        let second = cached(Path::new("/c"), KUBERNETES_SECOND_VERSION);
        assert_eq!(
            second.kube_scheduler,
            Path::new("/c/bin/kube-scheduler-v1.35.4")
        );
        assert_eq!(
            second.kubectl,
            Path::new("/c/bin/kubectl-v1.36.3"),
            "one kubectl for every cluster"
        );
    }
}
