//! `cargo xtask infra`: the real systems wactl's tests talk to, started on loopback.
//!
//! Docker Engine, two image registries, a Kubernetes control plane with kwok nodes (and, on
//! request, a second one at an older Kubernetes minor), PostgreSQL and Redis. Everything `up` starts has a pidfile in the state dir
//! (`$WACTL_INFRA_DIR`, default `~/.local/state/wactl/infra`) and `down` stops exactly that.
//! See `docs/testing.md`.

mod binaries;
mod cluster;
mod control_plane;
mod docker;
mod gomod;
mod images;
mod kwok;
mod operator_crds;
mod pki;
mod postgres;
pub mod process;
mod real_node;
mod redis;
mod registry;
mod reset;
mod state;

use process::Liveness;
use state::StateDir;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Start (or repair) every component; a warm machine takes well under a minute.
    Up {
        /// Also make the wactl.local/* base images (as `infra images`).
        #[arg(long)]
        images: bool,
        /// Also start a real node (containerd, kubelet, kube-proxy, CoreDNS) named
        /// `real-node-0`, for the `dev-real` environment.
        #[arg(long)]
        real_node: bool,
        /// Also start a second control plane with its own kwok nodes, context
        /// `wactl-dev-2`, at the previous Kubernetes minor (for multi-cluster tests).
        #[arg(long)]
        second_cluster: bool,
    },
    /// Stop what `up` started; safe to run twice.
    Down,
    /// Stop everything and delete the cluster, volumes, registry contents and the rest of
    /// the state, keeping the build cache and Docker images: the next `up` starts as on a
    /// machine that never ran the tests.
    Reset,
    /// Show each component as up/down with its address.
    Status,
    /// Print `export KEY=VALUE` lines for the tests (`eval "$(cargo xtask infra env)"`).
    Env,
    /// Only build (or find cached) the Kubernetes, etcd and kwok binaries; starts nothing.
    Build {
        /// Also build the second cluster's Kubernetes release.
        #[arg(long)]
        second_cluster: bool,
    },
    /// Build the wactl.local/* base images from Debian packages (needs `up` first).
    Images {
        /// Rebuild images that already exist.
        #[arg(long)]
        rebuild: bool,
    },
}

/// What `up` starts besides the services, which it always starts.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Also make the wactl.local/* base images that are missing (several minutes when cold).
    pub images: bool,
    /// Also start the real node (`--real-node`).
    pub real_node: bool,
    /// Also start the second cluster (`--second-cluster`).
    pub second_cluster: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Command::Up {
            images,
            real_node,
            second_cluster,
        } => up(&UpOptions {
            images: *images,
            real_node: *real_node,
            second_cluster: *second_cluster,
        }),
        Command::Down => down(),
        Command::Reset => reset::reset(),
        Command::Status => {
            print!("{}", status()?);
            Ok(())
        }
        Command::Build { second_cluster } => {
            let clusters: &[&cluster::Cluster] = if *second_cluster {
                &cluster::ALL
            } else {
                &[&cluster::FIRST]
            };
            let mut paths = Vec::new();
            for cluster in clusters {
                let bins = binaries::ensure(cluster.kubernetes)?;
                for path in [
                    bins.etcd,
                    bins.kube_apiserver,
                    bins.kube_controller_manager,
                    bins.kube_scheduler,
                    bins.kubectl,
                    bins.kwok,
                ] {
                    if !paths.contains(&path) {
                        paths.push(path);
                    }
                }
            }
            for path in paths {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Images { rebuild } => images::build(&images::ImageOptions { rebuild: *rebuild }),
        Command::Env => {
            for (key, value) in env_vars()? {
                // Quoted for the shell: the TLS database URL holds `&`.
                println!("export {key}='{}'", value.replace('\'', r"'\''"));
            }
            Ok(())
        }
    }
}

/// Host programs infra drives, and the Debian packages that provide them.
const INFRA_TOOLS: &[crate::tools::Tool] = &[
    crate::tools::Tool {
        program: "dockerd",
        package: "docker.io",
    },
    crate::tools::Tool {
        program: "docker-registry",
        package: "docker-registry",
    },
    crate::tools::Tool {
        program: "htpasswd",
        package: "apache2-utils",
    },
    crate::tools::Tool {
        program: "openssl",
        package: "openssl",
    },
    crate::tools::Tool {
        program: "redis-server",
        package: "redis-server",
    },
    crate::tools::Tool {
        program: "pg_ctlcluster",
        package: "postgresql",
    },
    crate::tools::Tool {
        program: "setpriv",
        package: "util-linux",
    },
    crate::tools::Tool {
        program: "nginx",
        package: "nginx",
    },
    crate::tools::Tool {
        program: "promtool",
        package: "prometheus",
    },
];

/// Starts every component that is not running, repairs half-started ones, and leaves
/// healthy ones alone.
pub fn up(opts: &UpOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    crate::tools::ensure(INFRA_TOOLS)?;
    let state = StateDir::from_env()?;
    state.dir("run")?;
    docker::up(&state)?;
    registry::up(&state)?;
    postgres::up(&state)?;
    redis::up(&state)?;
    let bins = binaries::ensure(cluster::FIRST.kubernetes)?;
    let control_plane_started = Instant::now();
    control_plane::up(&state, &cluster::FIRST, &bins)?;
    kwok::up(&state, &cluster::FIRST, &bins)?;
    operator_crds::install(&state, &cluster::FIRST, &bins)?;
    eprintln!(
        "infra: control plane ready in {:.1}s; KUBECONFIG={} (context {})",
        control_plane_started.elapsed().as_secs_f64(),
        state.kubeconfig().display(),
        pki::CONTEXT
    );
    if opts.second_cluster {
        let second = &cluster::SECOND;
        let bins = binaries::ensure(second.kubernetes)?;
        let started = Instant::now();
        control_plane::up(&state, second, &bins)?;
        kwok::up(&state, second, &bins)?;
        operator_crds::install(&state, second, &bins)?;
        eprintln!(
            "infra: second control plane ({}) ready in {:.1}s; context {} in KUBECONFIG and \
             alone in {}",
            second.kubernetes,
            started.elapsed().as_secs_f64(),
            second.context,
            second.kubeconfig(&state).display()
        );
    }
    // Before the real node: it pushes the component images (postgres, redis, prometheus)
    // to the registry for containerd, so on a fresh machine they must exist first.
    if opts.images {
        images::build(&images::ImageOptions::default())?;
    }
    if opts.real_node {
        real_node::up(&state, &bins)?;
    }
    eprintln!(
        "infra: up in {:.1}s; state in {}",
        started.elapsed().as_secs_f64(),
        state.root().display()
    );
    Ok(())
}

/// Stops, in reverse order, what `up` started.
/// The pinned kubectl (the one on PATH may be another version).
pub fn kubectl() -> anyhow::Result<std::path::PathBuf> {
    Ok(binaries::ensure(cluster::FIRST.kubernetes)?.kubectl)
}

pub fn down() -> anyhow::Result<()> {
    let state = StateDir::from_env()?;
    real_node::down(&state)?;
    // The second cluster is stopped whether or not this `down` was asked about it.
    for cluster in cluster::ALL.iter().rev() {
        kwok::down(&state, cluster)?;
        control_plane::down(&state, cluster)?;
    }
    redis::down(&state)?;
    postgres::down(&state)?;
    registry::down(&state)?;
    docker::down(&state)?;
    Ok(())
}

pub fn status() -> anyhow::Result<String> {
    let state = StateDir::from_env()?;
    let mut lines = vec![docker::status(&state)];
    lines.extend(registry::status(&state));
    lines.push(postgres::status(&state));
    lines.push(redis::status(&state));
    lines.extend(control_plane::status(&state, &cluster::FIRST));
    lines.push(kwok::status(&state, &cluster::FIRST));
    lines.extend(real_node::status(&state));
    lines.extend(control_plane::status(&state, &cluster::SECOND));
    lines.push(kwok::status(&state, &cluster::SECOND));
    lines.extend(images::status());
    Ok(lines.join(""))
}

/// The environment the tests read to find the infrastructure.
pub fn env_vars() -> anyhow::Result<Vec<(String, String)>> {
    let state = StateDir::from_env()?;
    let vars = [
        ("DOCKER_HOST", docker::DOCKER_HOST.to_string()),
        ("KUBECONFIG", state.kubeconfig().display().to_string()),
        ("WACTL_REGISTRY", registry::OPEN_ADDR.to_string()),
        ("WACTL_AUTH_REGISTRY", registry::AUTH_ADDR.to_string()),
        ("WACTL_AUTH_REGISTRY_USER", registry::AUTH_USER.to_string()),
        (
            "WACTL_AUTH_REGISTRY_PASSWORD",
            registry::auth_password(&state)?,
        ),
        (
            "WACTL_TEST_DATABASE_URL",
            postgres::DATABASE_URL.to_string(),
        ),
        ("WACTL_TEST_REDIS_URL", redis::URL.to_string()),
        (
            "WACTL_TEST_DATABASE_TLS_URL",
            postgres::tls_database_url(&pki::Pki::at(&state).ca_cert()),
        ),
        ("WACTL_TEST_REDIS_TLS_URL", redis::TLS_URL.to_string()),
        (
            "WACTL_INFRA_CA",
            pki::Pki::at(&state).ca_cert().display().to_string(),
        ),
    ];
    let mut vars: Vec<(String, String)> =
        vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    vars.extend(second_cluster_env(&state));
    Ok(vars)
}

/// Where tests find the second cluster, once `up --second-cluster` has written its
/// kubeconfig (its context is in `KUBECONFIG` too).
fn second_cluster_env(state: &StateDir) -> Vec<(String, String)> {
    let second = &cluster::SECOND;
    let kubeconfig = second.kubeconfig(state);
    if !kubeconfig.is_file() {
        return Vec::new();
    }
    vec![
        (
            "WACTL_KUBECONFIG_2".to_string(),
            kubeconfig.display().to_string(),
        ),
        ("WACTL_CONTEXT_2".to_string(), second.context.to_string()),
    ]
}

/// One `status` line for a component infra starts itself.
fn component_status(state: &StateDir, component: &str, addr: &str, up: bool) -> String {
    let owner = match process::liveness(state, component) {
        Liveness::Running(pid) => format!("pid {pid}"),
        Liveness::Stale => "stale pidfile: run `cargo xtask infra up`".into(),
        Liveness::Absent if up => "not started by infra".into(),
        Liveness::Absent => String::new(),
    };
    status_line(component, up, addr, &owner)
}

fn status_line(component: &str, up: bool, addr: &str, note: &str) -> String {
    let word = if up { "up" } else { "down" };
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("  ({note})")
    };
    format!("{component:<26} {word:<5} {addr}{note}\n")
}
