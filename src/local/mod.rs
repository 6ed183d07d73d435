//! The local stack (`wactl up`): compose's services run directly on the Docker Engine.
//!
//! The rendered `compose.yaml` is parsed into [`compose::ComposeFile`]; each service becomes
//! one container carrying the compose labels (so `docker compose -p PROJECT ps|logs` sees
//! it) and a `wactl.dev/config-hash` label. [`up`] converges: a container whose hash is
//! unchanged is kept, a changed one is recreated, services start in dependency order and
//! each is waited on until its healthcheck passes, with a deadline derived from the
//! healthcheck. The wait watches engine events (an exit, Docker's `unhealthy` or `healthy`)
//! and meanwhile runs the container's own healthcheck command through the engine's exec
//! every [`PROBE_EVERY`]: Docker 20.10 runs its first probe only one `interval` after the
//! start, and the first passing run of the same command is what turns Docker's status to
//! `healthy` anyway.

pub mod compose;
pub mod secrets;
pub mod watch;

use crate::config::Environment;
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, StopContainerOptionsBuilder,
};
use compose::{ComposeFile, Service, VolumeMount};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_CONFIG_HASH: &str = "wactl.dev/config-hash";

/// How many log lines a failure report carries.
pub const FAILURE_LOG_LINES: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Compose(#[from] compose::ComposeError),
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    #[error(transparent)]
    Watch(#[from] watch::WatchError),
    #[error("state directory {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secrets file {path}: {message}")]
    Secrets { path: PathBuf, message: String },
    #[error("service {service}: image {image} is not in the engine ({hint})")]
    ImageMissing {
        service: String,
        image: String,
        hint: String,
    },
    #[error("Docker Engine, while {action}: {message}")]
    Engine { action: String, message: String },
    #[error("service {service} {reason}; last log lines:\n{logs}")]
    Unhealthy {
        service: String,
        reason: String,
        logs: String,
    },
    #[error("no service {service} in project {project} (services: {known})")]
    UnknownService {
        service: String,
        project: String,
        known: String,
    },
}

fn engine(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> LocalError {
    let action = action.into();
    move |e| LocalError::Engine {
        action,
        message: e.to_string(),
    }
}

/// `.wactl/local/<env>` under `root`: rendered config files and `secrets.env`.
pub fn state_dir(root: &Path, env: &Environment) -> PathBuf {
    root.join(".wactl").join("local").join(&env.name)
}

/// Where a service is in its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "phase", content = "detail")]
pub enum Phase {
    Building,
    Built(String),
    Unchanged,
    Creating,
    Recreating,
    Starting,
    WaitingForHealth,
    Healthy(u64),
    Running,
    Failed(String),
    Removed,
}

/// Receives progress per service (the `ui` draws it).
pub trait UpProgress: Send + Sync {
    fn service(&self, service: &str, phase: &Phase);
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl UpProgress for NoProgress {
    fn service(&self, _service: &str, _phase: &Phase) {}
}

/// What `up` did to each service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Recreated,
    /// Same configuration, already running.
    Unchanged,
    /// Same configuration, was stopped.
    Started,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceOutcome {
    pub service: String,
    pub action: Action,
    pub container: String,
    pub config_hash: String,
    /// How health was learned; `None` for a service without a healthcheck.
    pub health: Option<HealthWait>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub project: String,
    pub services: Vec<ServiceOutcome>,
    /// Containers of services no longer in the definition, removed.
    pub removed: Vec<String>,
    /// Where each published service answers (no credentials).
    pub urls: BTreeMap<String, String>,
    /// The URL smoke should test: nginx when it runs, else the service itself.
    pub smoke_url: Option<String>,
    pub elapsed_ms: u64,
}

/// What `up` needs beyond the definition.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// `.wactl/local/<env>`: rendered files and secrets (see [`state_dir`]).
    pub state_dir: PathBuf,
    /// The image reference of address-service (a built image); `None` uses the
    /// definition's tag, which must already be in the engine.
    pub image: Option<String>,
    /// Template overrides, as for `render`.
    pub templates: Option<PathBuf>,
}

/// Renders `env` for the local stack and writes what the containers mount into
/// `options.state_dir`; returns the parsed compose file.
pub fn prepare(env: &Environment, options: &UpOptions) -> Result<ComposeFile, LocalError> {
    let rendered = crate::render::render(
        env,
        &crate::render::RenderOptions {
            image: options.image.clone(),
            templates: options.templates.clone(),
        },
    )?;
    let text = rendered
        .files
        .get("compose.yaml")
        .ok_or_else(|| compose::ComposeError::Parse("not rendered".into()))?;
    let file = ComposeFile::parse(text)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LocalError::State { path, source }
    };
    std::fs::create_dir_all(&options.state_dir).map_err(io(&options.state_dir))?;
    let mut wanted: Vec<&str> = vec!["compose.yaml"];
    for (name, service) in &file.services {
        for mount in service.mounts(name, &file)? {
            if let VolumeMount::File { source, .. } = mount {
                // A directory mount (grafana provisioning) takes every file under it.
                for path in rendered.files.keys() {
                    if path == &source || path.starts_with(&format!("{source}/")) {
                        wanted.push(path);
                    }
                }
            }
        }
    }
    for relative in wanted {
        let path = options.state_dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let content = &rendered.files[relative];
        // Rewriting an unchanged file would still be fine for the hash, but keeping the
        // inode lets a running container's bind mount see the same file.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            std::fs::write(&path, content).map_err(io(&path))?;
        }
    }
    secrets::ensure(&options.state_dir.join(secrets::FILE), env)?;
    Ok(file)
}

fn network_name(project: &str) -> String {
    format!("{project}_default")
}

fn volume_name(project: &str, volume: &str) -> String {
    format!("{project}_{volume}")
}

fn container_name(project: &str, service: &str) -> String {
    format!("{project}-{service}-1")
}

fn filters(pairs: &[(&str, String)]) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        map.entry((*k).to_owned()).or_default().push(v.clone());
    }
    map
}

fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    filters(&[("label", format!("{LABEL_PROJECT}={project}"))])
}

/// The container a service would get, and the hash that identifies it.
struct Desired {
    body: ContainerCreateBody,
    hash: String,
}

fn desired(
    project: &str,
    name: &str,
    service: &Service,
    file: &ComposeFile,
    state_dir: &Path,
    image_id: &str,
) -> Result<Desired, LocalError> {
    let mut env: BTreeMap<String, String> = service.environment.clone();
    for env_file in &service.env_file {
        let path = state_dir.join(env_file);
        for (k, v) in secrets::read(&path)? {
            env.entry(k).or_insert(v);
        }
    }
    let mut mounts = Vec::new();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for mount in service.mounts(name, file)? {
        mounts.push(match mount {
            VolumeMount::Named {
                volume,
                target,
                read_only,
            } => Mount {
                typ: Some(MountType::VOLUME),
                source: Some(volume_name(project, &volume)),
                target: Some(target),
                read_only: Some(read_only),
                ..Mount::default()
            },
            VolumeMount::File {
                source,
                target,
                read_only,
            } => {
                let path = state_dir.join(&source);
                files.insert(source.clone(), content_hash(&path)?);
                Mount {
                    typ: Some(MountType::BIND),
                    source: Some(path.to_string_lossy().into_owned()),
                    target: Some(target),
                    read_only: Some(read_only),
                    ..Mount::default()
                }
            }
        });
    }
    let ports = service.port_bindings(name)?;
    let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = ports
        .iter()
        .map(|p| {
            (
                format!("{}/tcp", p.container_port),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(p.host_port.to_string()),
                }]),
            )
        })
        .collect();
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    let healthcheck = service.health(name)?.map(|h| HealthConfig {
        test: service.healthcheck.as_ref().map(|c| c.test.clone()),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period)),
        ..HealthConfig::default()
    });
    let restart = match service.restart.as_deref() {
        Some("always") => RestartPolicyNameEnum::ALWAYS,
        Some("on-failure") => RestartPolicyNameEnum::ON_FAILURE,
        Some("unless-stopped") => RestartPolicyNameEnum::UNLESS_STOPPED,
        _ => RestartPolicyNameEnum::NO,
    };

    // The hash covers everything the container is made from: the compose entry, the image
    // it resolves to, the environment (secrets included, only as a hash) and the bytes
    // of every mounted file.
    let hash = {
        let identity = serde_json::json!({
            "service": service,
            "image_id": image_id,
            "environment": env,
            "files": files,
        });
        hex::encode(Sha256::digest(identity.to_string().as_bytes()))
    };
    let labels: HashMap<String, String> = [
        (LABEL_PROJECT, project.to_owned()),
        (LABEL_SERVICE, name.to_owned()),
        (LABEL_NUMBER, "1".to_owned()),
        (LABEL_ONEOFF, "False".to_owned()),
        (LABEL_CONFIG_HASH, hash.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let network = network_name(project);
    let body = ContainerCreateBody {
        image: Some(service.image.clone()),
        cmd: service.command.clone(),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: Some(
            ports
                .iter()
                .map(|p| format!("{}/tcp", p.container_port))
                .collect(),
        ),
        healthcheck,
        stop_timeout: Some(i64::try_from(service.stop_grace(name)?.as_secs()).unwrap_or(30)),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            port_bindings: Some(port_bindings),
            restart_policy: Some(RestartPolicy {
                name: Some(restart),
                maximum_retry_count: None,
            }),
            network_mode: Some(network.clone()),
            readonly_rootfs: Some(service.read_only),
            security_opt: Some(service.security_opt.clone()),
            cap_drop: Some(service.cap_drop.clone()),
            ..HostConfig::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network,
                EndpointSettings {
                    aliases: Some(vec![name.to_owned()]),
                    ..EndpointSettings::default()
                },
            )])),
        }),
        ..ContainerCreateBody::default()
    };
    Ok(Desired { body, hash })
}

fn content_hash(path: &Path) -> Result<String, LocalError> {
    let bytes = std::fs::read(path).map_err(|source| LocalError::State {
        path: path.to_owned(),
        source,
    })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// A container of the project, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerStatus {
    pub service: String,
    pub name: String,
    pub id: String,
    pub image: String,
    /// `running`, `exited`, …
    pub state: String,
    /// `Up 3 minutes (healthy)`
    pub status: String,
    pub config_hash: Option<String>,
    /// `127.0.0.1:18080->8080/tcp`
    pub ports: Vec<String>,
}

/// Every container of `project`, by service name.
pub async fn ps(docker: &Docker, project: &str) -> Result<Vec<ContainerStatus>, LocalError> {
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&project_filter(project))
                .build(),
        ))
        .await
        .map_err(engine("listing containers"))?;
    let mut out: Vec<ContainerStatus> = list
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            let mut ports: Vec<String> = c
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| {
                    let public = p.public_port?;
                    Some(format!(
                        "{}:{public}->{}/tcp",
                        p.ip.unwrap_or_default(),
                        p.private_port
                    ))
                })
                .collect();
            ports.sort();
            ports.dedup();
            ContainerStatus {
                service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                id: c.id.unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                status: c.status.unwrap_or_default(),
                config_hash: labels.get(LABEL_CONFIG_HASH).cloned(),
                ports,
            }
        })
        .collect();
    out.sort_by(|a, b| a.service.cmp(&b.service).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// Brings the stack of `env` to the rendered state and waits until every service with a
/// healthcheck is healthy. `prepare` must have written the state directory.
pub async fn up(
    docker: &Docker,
    env: &Environment,
    file: &ComposeFile,
    options: &UpOptions,
    progress: &dyn UpProgress,
) -> Result<UpReport, LocalError> {
    let start = Instant::now();
    let project = env.local.project.as_str();
    let state_dir =
        std::path::absolute(&options.state_dir).map_err(|source| LocalError::State {
            path: options.state_dir.clone(),
            source,
        })?;
    let existing = ps(docker, project).await?;

    // Services dropped from the definition go first, so their ports are free.
    let mut removed = Vec::new();
    for c in existing
        .iter()
        .filter(|c| !file.services.contains_key(&c.service))
    {
        remove_container(docker, &c.id, 10).await?;
        progress.service(&c.service, &Phase::Removed);
        removed.push(c.service.clone());
    }

    ensure_network(docker, project).await?;
    for volume in file.volumes.keys() {
        ensure_volume(docker, project, volume).await?;
    }

    // Services whose dependencies are all healthy start together, as compose does.
    let mut outcomes = Vec::new();
    for wave in file.start_waves()? {
        let results = futures_util::future::join_all(wave.iter().map(|name| {
            converge_service(docker, project, name, file, &state_dir, &existing, progress)
        }))
        .await;
        for result in results {
            outcomes.push(result?);
        }
    }

    let mut urls = BTreeMap::new();
    for (name, service) in &file.services {
        if let Some(port) = service.port_bindings(name)?.first() {
            let url = match name.as_str() {
                "postgres" => format!("postgres://address@127.0.0.1:{}/address", port.host_port),
                "redis" => format!("redis://127.0.0.1:{}", port.host_port),
                _ => format!("http://127.0.0.1:{}", port.host_port),
            };
            urls.insert(name.clone(), url);
        }
    }
    let smoke_url = urls
        .get("nginx")
        .or_else(|| urls.get(&env.app.name))
        .cloned();
    Ok(UpReport {
        project: project.to_owned(),
        services: outcomes,
        removed,
        urls,
        smoke_url,
        elapsed_ms: millis(start.elapsed()),
    })
}

/// Brings one service's container to its desired state and waits for its health.
async fn converge_service(
    docker: &Docker,
    project: &str,
    name: &str,
    file: &ComposeFile,
    state_dir: &Path,
    existing: &[ContainerStatus],
    progress: &dyn UpProgress,
) -> Result<ServiceOutcome, LocalError> {
    let service = &file.services[name];
    let image = docker.inspect_image(&service.image).await.map_err(|e| {
        LocalError::ImageMissing {
            service: name.to_owned(),
            image: service.image.clone(),
            hint: match e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                } => "build it first: `cargo xtask infra images` makes the wactl.local/* images; `wactl up` builds address-service".to_owned(),
                other => other.to_string(),
            },
        }
    })?;
    let image_id = image.id.unwrap_or_default();
    let want = desired(project, name, service, file, state_dir, &image_id)?;
    let current = existing.iter().find(|c| c.service == name);
    let action = match current {
        Some(c) if c.config_hash.as_deref() == Some(want.hash.as_str()) => {
            if c.state == "running" {
                progress.service(name, &Phase::Unchanged);
                Action::Unchanged
            } else {
                progress.service(name, &Phase::Starting);
                Action::Started
            }
        }
        Some(c) => {
            progress.service(name, &Phase::Recreating);
            let grace = service.stop_grace(name)?.as_secs();
            remove_container(docker, &c.id, grace).await?;
            Action::Recreated
        }
        None => {
            progress.service(name, &Phase::Creating);
            Action::Created
        }
    };
    let container = match (action, current) {
        (Action::Unchanged | Action::Started, Some(c)) => c.id.clone(),
        _ => {
            docker
                .create_container(
                    Some(
                        CreateContainerOptionsBuilder::new()
                            .name(&container_name(project, name))
                            .build(),
                    ),
                    want.body,
                )
                .await
                .map_err(engine(format!("creating the {name} container")))?
                .id
        }
    };
    // Subscribe before starting, so no health event is missed.
    let events = docker.events(Some(
        EventsOptionsBuilder::new()
            .filters(&filters(&[
                ("type", "container".to_owned()),
                ("container", container.clone()),
            ]))
            .build(),
    ));
    if action != Action::Unchanged {
        progress.service(name, &Phase::Starting);
        docker
            .start_container(
                &container,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(engine(format!("starting {name}")))?;
    }
    let health = match service.health(name)? {
        Some(timings) => {
            progress.service(name, &Phase::WaitingForHealth);
            let waited = Instant::now();
            let probe = service
                .healthcheck
                .as_ref()
                .and_then(|h| Probe::from_test(&h.test, timings.timeout));
            match wait_healthy(
                docker,
                &container,
                events,
                probe.as_ref(),
                timings.give_up_after(),
            )
            .await
            {
                Ok(health) => {
                    progress.service(name, &Phase::Healthy(millis(waited.elapsed())));
                    Some(health)
                }
                Err(reason) => {
                    progress.service(name, &Phase::Failed(reason.clone()));
                    return Err(LocalError::Unhealthy {
                        service: name.to_owned(),
                        reason,
                        logs: last_logs(docker, &container, FAILURE_LOG_LINES).await,
                    });
                }
            }
        }
        None => {
            progress.service(name, &Phase::Running);
            None
        }
    };
    Ok(ServiceOutcome {
        service: name.to_owned(),
        action,
        container,
        config_hash: want.hash,
        health,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How often wactl runs a starting container's healthcheck command itself.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// A container's healthcheck command, as wactl runs it through the engine's exec while it
/// waits (the same command, user, environment and working directory Docker's probe uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The exec command: `CMD`'s arguments, or `/bin/sh -c` and `CMD-SHELL`'s string.
    pub command: Vec<String>,
    /// The healthcheck's `timeout`: a run that takes longer has failed, as for Docker.
    pub timeout: Duration,
}

impl Probe {
    /// The probe for a compose healthcheck `test`; `None` for `NONE`, an empty command or
    /// a form Docker does not run (then only the engine's status counts).
    pub fn from_test(test: &[String], timeout: Duration) -> Option<Probe> {
        let (form, rest) = test.split_first()?;
        let command = match form.as_str() {
            "CMD" if !rest.is_empty() => rest.to_vec(),
            // Docker runs CMD-SHELL with the default shell of a Linux container.
            "CMD-SHELL" if !rest.is_empty() => {
                vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")]
            }
            _ => return None,
        };
        Some(Probe { command, timeout })
    }
}

/// Who said the container is healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthSource {
    /// Docker's own status (`health_status: healthy`, or already healthy).
    Engine,
    /// A passing run of the healthcheck command through exec, before Docker's first probe.
    Probe,
}

/// How a wait for health ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthWait {
    pub source: HealthSource,
    /// Runs of the healthcheck command wactl made, and how many of them failed.
    pub probes: u32,
    pub probes_failed: u32,
}

/// How one run of the healthcheck command through exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProbeRun {
    /// It exited 0.
    Passed,
    /// It exited otherwise, or could not run (the container not running yet or any more).
    Failed,
    /// It outlived the healthcheck's timeout; its process may still run in the container
    /// as this exec.
    TimedOut(String),
}

/// One run of `probe` in `container`. The timeout counts from the command's start, as
/// Docker's does: creating the exec is an engine call, slow only when the engine is, and
/// bounded by the caller's give-up limit.
async fn run_probe(docker: &Docker, container: &str, probe: &Probe) -> ProbeRun {
    let Ok(exec) = docker
        .create_exec(
            container,
            bollard::exec::CreateExecOptions::<String> {
                cmd: Some(probe.command.clone()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
    else {
        return ProbeRun::Failed;
    };
    let run = async {
        if let bollard::exec::StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&exec.id, None).await?
        {
            // The output is not needed, only its end: the command has exited then.
            while let Some(chunk) = output.next().await {
                chunk?;
            }
        }
        // The engine records the exit code as the stream closes; a few reads cover the gap.
        for _ in 0..5 {
            let inspect = docker.inspect_exec(&exec.id).await?;
            if inspect.running != Some(true) {
                return Ok::<_, bollard::errors::Error>(inspect.exit_code == Some(0));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(false)
    };
    match tokio::time::timeout(probe.timeout, run).await {
        Ok(Ok(true)) => ProbeRun::Passed,
        Ok(_) => ProbeRun::Failed,
        Err(_) => ProbeRun::TimedOut(exec.id),
    }
}

/// Waits until the exec `id` has ended (or the engine no longer knows it), so that runs of
/// the healthcheck never pile up in a slow container.
async fn exec_ended(docker: &Docker, id: &str) {
    while let Ok(inspect) = docker.inspect_exec(id).await {
        if inspect.running != Some(true) {
            return;
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Waits for the container's health to become `healthy`. Watches engine events: fails on
/// `unhealthy`, on the container exiting, or after `limit`; succeeds on `healthy`. With a
/// `probe`, meanwhile runs it every [`PROBE_EVERY`] and succeeds on its first pass; a
/// failing run is not fatal (Docker's own verdict is). A run that times out has failed, and
/// the next starts only once it has ended: one run at a time, however slow the machine.
pub async fn wait_healthy(
    docker: &Docker,
    container: &str,
    events: impl futures_util::Stream<
        Item = Result<bollard::models::EventMessage, bollard::errors::Error>,
    >,
    probe: Option<&Probe>,
    limit: Duration,
) -> Result<HealthWait, String> {
    let probes = std::sync::atomic::AtomicU32::new(0);
    let failed = std::sync::atomic::AtomicU32::new(0);
    let status = async {
        let inspect = docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(|e| e.to_string())?;
        let state = inspect.state.unwrap_or_default();
        Ok::<_, String>((
            state.health.and_then(|h| h.status).map(|s| s.to_string()),
            state.running.unwrap_or(false),
            state.exit_code,
        ))
    };
    let watch = async {
        let mut events = std::pin::pin!(events);
        // The state now: events from before the subscription are not replayed.
        match status.await? {
            (Some(h), _, _) if h == "healthy" => return Ok(()),
            (_, false, code) => {
                return Err(format!("exited with code {}", code.unwrap_or(-1)));
            }
            _ => {}
        }
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| format!("watching engine events: {e}"))?;
            match event.action.as_deref().unwrap_or_default() {
                "health_status: healthy" => return Ok(()),
                "health_status: unhealthy" => return Err("failed its healthcheck".to_owned()),
                "die" => {
                    let code = event
                        .actor
                        .and_then(|a| a.attributes)
                        .and_then(|a| a.get("exitCode").cloned())
                        .unwrap_or_else(|| "?".into());
                    return Err(format!("exited with code {code} before it was healthy"));
                }
                _ => {}
            }
        }
        Err("the engine closed its event stream".to_owned())
    };
    let probing = async {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(probe) = probe else {
            return std::future::pending::<()>().await;
        };
        // The give-up limit bounds the wait; this bounds the runs too.
        let most = u32::try_from(limit.as_millis() / PROBE_EVERY.as_millis())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        for _ in 0..most {
            let ran = Instant::now();
            probes.fetch_add(1, Relaxed);
            match run_probe(docker, container, probe).await {
                ProbeRun::Passed => return,
                ProbeRun::Failed => {
                    failed.fetch_add(1, Relaxed);
                }
                ProbeRun::TimedOut(exec) => {
                    failed.fetch_add(1, Relaxed);
                    exec_ended(docker, &exec).await;
                }
            }
            tokio::time::sleep(PROBE_EVERY.saturating_sub(ran.elapsed())).await;
        }
        std::future::pending::<()>().await
    };
    let waited = async {
        tokio::select! {
            // An exit or Docker's `unhealthy` seen together with a passing run wins.
            biased;
            result = watch => result.map(|()| HealthSource::Engine),
            () = probing => Ok(HealthSource::Probe),
        }
    };
    let source = tokio::time::timeout(limit, waited)
        .await
        .unwrap_or_else(|_| Err(format!("was not healthy within {}s", limit.as_secs())))?;
    Ok(HealthWait {
        source,
        probes: probes.load(std::sync::atomic::Ordering::Relaxed),
        probes_failed: failed.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// The last `lines` log lines of a container, for a failure report.
pub async fn last_logs(docker: &Docker, container: &str, lines: usize) -> String {
    let stream = docker.logs(
        container,
        Some(
            LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .tail(&lines.to_string())
                .build(),
        ),
    );
    let collect = stream
        .map(|chunk| match chunk {
            Ok(output) => output.to_string(),
            Err(e) => format!("<cannot read logs: {e}>\n"),
        })
        .collect::<Vec<String>>();
    match tokio::time::timeout(Duration::from_secs(10), collect).await {
        Ok(chunks) => {
            let text = chunks.concat();
            if text.trim().is_empty() {
                "<no output>".to_owned()
            } else {
                text.trim_end().to_owned()
            }
        }
        Err(_) => "<logs did not arrive within 10s>".to_owned(),
    }
}

async fn remove_container(docker: &Docker, id: &str, grace_secs: u64) -> Result<(), LocalError> {
    let t = i32::try_from(grace_secs).unwrap_or(30);
    // A container that is not running answers 304; removal below is what matters.
    let _ = docker
        .stop_container(id, Some(StopContainerOptionsBuilder::new().t(t).build()))
        .await;
    docker
        .remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .map_err(engine(format!("removing container {id}")))
}

async fn ensure_network(docker: &Docker, project: &str) -> Result<(), LocalError> {
    let name = network_name(project);
    match docker
        .inspect_network(
            &name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(_) => return Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(engine(format!("inspecting network {name}"))(e)),
    }
    docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([
                (LABEL_PROJECT.to_owned(), project.to_owned()),
                (
                    "com.docker.compose.network".to_owned(),
                    "default".to_owned(),
                ),
            ])),
            ..NetworkCreateRequest::default()
        })
        .await
        .map_err(engine(format!("creating network {name}")))?;
    Ok(())
}

async fn ensure_volume(docker: &Docker, project: &str, volume: &str) -> Result<(), LocalError> {
    let name = volume_name(project, volume);
    // Creating an existing volume with the same driver is a no-op on the engine.
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(HashMap::from([
                (LABEL_PROJECT.to_owned(), project.to_owned()),
                ("com.docker.compose.volume".to_owned(), volume.to_owned()),
            ])),
            ..VolumeCreateRequest::default()
        })
        .await
        .map_err(engine(format!("creating volume {name}")))?;
    Ok(())
}

/// What `down` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    pub containers: Vec<String>,
    pub network: Option<String>,
    pub volumes: Vec<String>,
}

/// Stops and removes every container of `project` and its network; its named volumes too
/// with `volumes`.
pub async fn down(docker: &Docker, project: &str, volumes: bool) -> Result<DownReport, LocalError> {
    let mut report = DownReport::default();
    let containers = ps(docker, project).await?;
    let removals = containers.iter().map(|c| async move {
        remove_container(docker, &c.id, 10)
            .await
            .map(|()| c.name.clone())
    });
    for removed in futures_util::future::join_all(removals).await {
        report.containers.push(removed?);
    }
    let network = network_name(project);
    match docker.remove_network(&network).await {
        Ok(()) => report.network = Some(network),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(engine(format!("removing network {network}"))(e)),
    }
    if volumes {
        let list = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new()
                    .filters(&project_filter(project))
                    .build(),
            ))
            .await
            .map_err(engine("listing volumes"))?;
        for volume in list.volumes.unwrap_or_default() {
            docker
                .remove_volume(
                    &volume.name,
                    Some(RemoveVolumeOptionsBuilder::new().force(true).build()),
                )
                .await
                .map_err(engine(format!("removing volume {}", volume.name)))?;
            report.volumes.push(volume.name);
        }
    }
    Ok(report)
}

/// The log stream of one service (or every service, each line prefixed by its name).
pub async fn logs<'d>(
    docker: &'d Docker,
    project: &str,
    service: Option<&str>,
    follow: bool,
    tail: Option<usize>,
) -> Result<
    impl futures_util::Stream<Item = Result<(String, String), LocalError>> + use<'d>,
    LocalError,
> {
    let containers = ps(docker, project).await?;
    let chosen: Vec<ContainerStatus> = match service {
        Some(s) => {
            let found: Vec<_> = containers
                .iter()
                .filter(|c| c.service == s)
                .cloned()
                .collect();
            if found.is_empty() {
                return Err(LocalError::UnknownService {
                    service: s.to_owned(),
                    project: project.to_owned(),
                    known: containers
                        .iter()
                        .map(|c| c.service.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            found
        }
        None => containers,
    };
    let tail = tail.map_or_else(|| "all".to_owned(), |n| n.to_string());
    let streams = chosen.into_iter().map(move |c| {
        let service = c.service.clone();
        docker
            .logs(
                &c.id,
                Some(
                    LogsOptionsBuilder::new()
                        .stdout(true)
                        .stderr(true)
                        .follow(follow)
                        .tail(&tail)
                        .build(),
                ),
            )
            .map(move |chunk| {
                chunk
                    .map(|output| (service.clone(), output.to_string()))
                    .map_err(engine("reading logs"))
            })
    });
    Ok(futures_util::stream::select_all(streams.map(Box::pin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_tests_become_the_commands_docker_runs() {
        let t = Duration::from_secs(3);
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cases: [(&[&str], Option<&[&str]>); 6] = [
            (&["CMD", "redis-cli", "ping"], Some(&["redis-cli", "ping"])),
            (
                &["CMD-SHELL", "pg_isready -q"],
                Some(&["/bin/sh", "-c", "pg_isready -q"]),
            ),
            (&["NONE"], None),
            (&["CMD"], None),
            (&[], None),
            (&["redis-cli", "ping"], None),
        ];
        for (test, command) in cases {
            assert_eq!(
                Probe::from_test(&words(test), t),
                command.map(|c| Probe {
                    command: words(c),
                    timeout: t
                }),
                "{test:?}"
            );
        }
        assert_eq!(cases.len(), 6);
    }
}
