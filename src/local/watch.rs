//! `wactl up --watch`: rebuild and replace the local stack's changed services whenever the
//! build context changes.
//!
//! The context is watched with `notify`; a path matched by `.dockerignore` is not part of
//! the image and never starts a cycle. Events arriving within the debounce window of each
//! other form one burst and one cycle. A cycle builds, tries every changed service in a
//! candidate container without published ports (so the running one keeps serving), and
//! only when every candidate is healthy converges the stack as `up` does and reruns smoke.

use super::{LocalError, UpOptions, UpProgress};
use crate::build::dockerignore::DockerIgnore;
use crate::config::Environment;
use bollard::Docker;
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;
use notify::Watcher;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the watch loop needs beyond the engine.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Root of the build context (its `.dockerignore` decides what counts as a change).
    pub context: PathBuf,
    /// `.wactl/local/<env>`, as for `up`.
    pub state_dir: PathBuf,
    /// Quiet time that ends a burst of changes.
    pub debounce: Duration,
    /// Rerun the smoke suite after each healthy cycle.
    pub smoke: bool,
    /// The Dockerfile to build; `None`: the one rendered for the environment.
    pub dockerfile: Option<String>,
    /// Template overrides, as for `render`.
    pub templates: Option<PathBuf>,
    /// Stop after this many cycles (`None`: until stopped).
    pub max_cycles: Option<usize>,
}

/// The step of a cycle that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleStep {
    Load,
    Build,
    Candidate,
    Converge,
    Smoke,
}

impl std::fmt::Display for CycleStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CycleStep::Load => "loading the definition",
            CycleStep::Build => "build",
            CycleStep::Candidate => "new container's health",
            CycleStep::Converge => "replacing containers",
            CycleStep::Smoke => "smoke",
        })
    }
}

/// Milliseconds from the first change of a burst to the end of each step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CycleTimings {
    pub built_ms: u64,
    pub healthy_ms: u64,
    /// `None` when smoke was not run.
    pub smoke_passed_ms: Option<u64>,
}

/// One thing the watch loop did, for a [`WatchObserver`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    Watching {
        context: PathBuf,
    },
    /// A burst of changes ended; `paths` are relative to the context (first few).
    ChangeSeen {
        cycle: usize,
        paths: Vec<String>,
        more: usize,
    },
    /// The services that were replaced, and the timings.
    CycleSucceeded {
        cycle: usize,
        replaced: Vec<String>,
        timings: CycleTimings,
    },
    /// Nothing was replaced (or the stack was left as converge left it); the previous
    /// containers keep serving.
    CycleFailed {
        cycle: usize,
        step: CycleStep,
        reason: String,
    },
    Log {
        service: String,
        line: String,
    },
}

/// Receives the loop's events and each service's progress (the `ui` draws them).
pub trait WatchObserver: UpProgress {
    fn watch(&self, event: &WatchEvent);
}

/// How the loop ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchSummary {
    pub cycles: usize,
    pub succeeded: usize,
    pub failed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("watching {path}: {message}")]
    Watch { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    DockerIgnore { path: PathBuf, message: String },
}

/// Whether `relative` (slash-separated, relative to the context) is sent to the engine.
pub fn in_context(ignore: &DockerIgnore, relative: &str) -> bool {
    !relative.is_empty() && !ignore.excludes(relative)
}

fn read_dockerignore(context: &Path) -> Result<DockerIgnore, WatchError> {
    let path = context.join(".dockerignore");
    match std::fs::read_to_string(&path) {
        Ok(text) => DockerIgnore::parse(&text).map_err(|e| WatchError::DockerIgnore {
            path,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerIgnore::default()),
        Err(e) => Err(WatchError::DockerIgnore {
            path,
            message: e.to_string(),
        }),
    }
}

/// The changed paths of one burst, in the order first seen.
struct Burst {
    first_seen: Instant,
    paths: Vec<String>,
}

/// Watches `context`; sends each burst's paths once `debounce` passed without a change.
/// The returned watcher must be kept alive.
fn watch_context(
    context: &Path,
    debounce: Duration,
) -> Result<(notify::RecommendedWatcher, mpsc::UnboundedReceiver<Burst>), WatchError> {
    let ignore = read_dockerignore(context)?;
    let context = std::path::absolute(context).map_err(|e| WatchError::Watch {
        path: context.to_owned(),
        message: e.to_string(),
    })?;
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<(Instant, String)>();
    let root = context.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        for path in event.paths {
            let Ok(relative) = path.strip_prefix(&root) else {
                continue;
            };
            let relative = relative.to_string_lossy().replace('\\', "/");
            if in_context(&ignore, &relative) {
                // The receiver only goes away when the loop ends.
                let _ = raw_tx.send((Instant::now(), relative));
            }
        }
    })
    .map_err(|e| WatchError::Watch {
        path: context.clone(),
        message: e.to_string(),
    })?;
    watcher
        .watch(&context, notify::RecursiveMode::Recursive)
        .map_err(|e| WatchError::Watch {
            path: context.clone(),
            message: e.to_string(),
        })?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((first_seen, path)) = raw_rx.recv().await {
            let mut burst = Burst {
                first_seen,
                paths: vec![path],
            };
            loop {
                match tokio::time::timeout(debounce, raw_rx.recv()).await {
                    Ok(Some((_, path))) => {
                        if !burst.paths.contains(&path) {
                            burst.paths.push(path);
                        }
                    }
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if tx.send(burst).is_err() {
                return;
            }
        }
    });
    Ok((watcher, rx))
}

/// Streams every container's new log lines to the observer until aborted.
fn stream_logs(
    docker: &Docker,
    project: &str,
    tx: mpsc::UnboundedSender<(String, String)>,
) -> tokio::task::JoinHandle<()> {
    let docker = docker.clone();
    let project = project.to_owned();
    tokio::spawn(async move {
        let Ok(containers) = super::ps(&docker, &project).await else {
            return;
        };
        let streams = containers.into_iter().map(|c| {
            let service = c.service.clone();
            docker
                .logs(
                    &c.id,
                    Some(
                        LogsOptionsBuilder::new()
                            .stdout(true)
                            .stderr(true)
                            .follow(true)
                            .tail("0")
                            .build(),
                    ),
                )
                .map(move |chunk| chunk.map(|out| (service.clone(), out.to_string())))
        });
        let mut all = futures_util::stream::select_all(streams.map(Box::pin));
        while let Some(Ok((service, text))) = all.next().await {
            for line in text.lines() {
                if tx.send((service.clone(), line.to_owned())).is_err() {
                    return;
                }
            }
        }
    })
}

/// Runs cycles until `stop` completes (Ctrl-C) or `max_cycles` cycles ran. The stack must
/// be up already (`up` ran); `reload` re-reads the definition at the start of each cycle.
pub async fn watch(
    docker: &Docker,
    options: &WatchOptions,
    reload: &(dyn Fn() -> Result<Environment, String> + Sync),
    observer: &dyn WatchObserver,
    stop: impl std::future::Future<Output = ()>,
) -> Result<WatchSummary, LocalError> {
    let (_watcher, mut bursts) = watch_context(&options.context, options.debounce)?;
    observer.watch(&WatchEvent::Watching {
        context: options.context.clone(),
    });
    let mut summary = WatchSummary::default();
    let (log_tx, mut log_rx) = mpsc::unbounded_channel();
    let mut logs = reload()
        .ok()
        .map(|env| stream_logs(docker, &env.local.project, log_tx.clone()));
    let mut stop = std::pin::pin!(stop);
    loop {
        if options.max_cycles.is_some_and(|max| summary.cycles >= max) {
            break;
        }
        let burst = tokio::select! {
            () = &mut stop => break,
            Some((service, line)) = log_rx.recv() => {
                observer.watch(&WatchEvent::Log { service, line });
                continue;
            }
            burst = bursts.recv() => match burst {
                Some(burst) => burst,
                None => break,
            },
        };
        summary.cycles += 1;
        let cycle = summary.cycles;
        const SHOWN: usize = 5;
        observer.watch(&WatchEvent::ChangeSeen {
            cycle,
            paths: burst.paths.iter().take(SHOWN).cloned().collect(),
            more: burst.paths.len().saturating_sub(SHOWN),
        });
        // A cycle is not interrupted half-way: Ctrl-C during one ends the loop after it.
        let outcome = run_cycle(docker, options, reload, observer, burst.first_seen).await;
        match outcome {
            Ok((replaced, timings, env_project)) => {
                summary.succeeded += 1;
                observer.watch(&WatchEvent::CycleSucceeded {
                    cycle,
                    replaced,
                    timings,
                });
                // Replaced containers have new log streams.
                if let Some(task) = logs.take() {
                    task.abort();
                }
                logs = Some(stream_logs(docker, &env_project, log_tx.clone()));
            }
            Err((step, reason)) => {
                summary.failed += 1;
                observer.watch(&WatchEvent::CycleFailed {
                    cycle,
                    step,
                    reason,
                });
            }
        }
    }
    if let Some(task) = logs.take() {
        task.abort();
    }
    Ok(summary)
}

type CycleResult = Result<(Vec<String>, CycleTimings, String), (CycleStep, String)>;

async fn run_cycle(
    docker: &Docker,
    options: &WatchOptions,
    reload: &(dyn Fn() -> Result<Environment, String> + Sync),
    observer: &dyn WatchObserver,
    first_seen: Instant,
) -> CycleResult {
    let since = |_: ()| super::millis(first_seen.elapsed());
    let env = reload().map_err(|e| (CycleStep::Load, e))?;
    let dockerfile = match &options.dockerfile {
        Some(text) => text.clone(),
        None => {
            let rendered = crate::render::render(
                &env,
                &crate::render::RenderOptions {
                    image: None,
                    templates: options.templates.clone(),
                },
            )
            .map_err(|e| (CycleStep::Load, e.to_string()))?;
            rendered
                .files
                .get("Dockerfile")
                .cloned()
                .ok_or((CycleStep::Load, "no Dockerfile rendered".to_owned()))?
        }
    };
    observer.service(&env.app.name, &super::Phase::Building);
    let mut build_options = crate::build::BuildOptions::new(&options.context);
    build_options.check_registry = false;
    let built = crate::build::build(
        docker,
        &env,
        &dockerfile,
        &build_options,
        &crate::build::NoProgress,
    )
    .await
    .map_err(|e| (CycleStep::Build, format!("{e:#}")))?;
    observer.service(&env.app.name, &super::Phase::Built(built.reference.clone()));
    let built_ms = since(());

    let up_options = UpOptions {
        state_dir: options.state_dir.clone(),
        image: Some(built.reference.clone()),
        templates: options.templates.clone(),
    };
    let file = super::prepare(&env, &up_options).map_err(|e| (CycleStep::Load, e.to_string()))?;
    let changed = try_candidates(docker, &env, &file, &up_options)
        .await
        .map_err(|e| (CycleStep::Candidate, e))?;
    let report = super::up(docker, &env, &file, &up_options, observer)
        .await
        .map_err(|e| (CycleStep::Converge, e.to_string()))?;
    let healthy_ms = since(());
    let replaced: Vec<String> = report
        .services
        .iter()
        .filter(|s| s.action != super::Action::Unchanged)
        .map(|s| s.service.clone())
        .collect();
    debug_assert!(changed.iter().all(|c| replaced.contains(c)));
    let smoke_passed_ms = match (&report.smoke_url, options.smoke) {
        (Some(url), true) => {
            let smoke = crate::smoke::run(
                &env,
                url,
                &crate::smoke::SmokeOptions::for_environment(&env, url),
            )
            .await;
            if !smoke.passed {
                let failed: Vec<String> = smoke.failed().map(|c| c.name.clone()).collect();
                return Err((
                    CycleStep::Smoke,
                    format!("smoke failed against {url}: {}", failed.join(", ")),
                ));
            }
            Some(since(()))
        }
        _ => None,
    };
    Ok((
        replaced,
        CycleTimings {
            built_ms,
            healthy_ms,
            smoke_passed_ms,
        },
        report.project,
    ))
}

/// Starts every service whose container would change in a candidate container without
/// published ports or network alias, and waits for its health; the running containers are
/// untouched. Returns the services tried; an error names the first one that failed.
async fn try_candidates(
    docker: &Docker,
    env: &Environment,
    file: &super::compose::ComposeFile,
    options: &UpOptions,
) -> Result<Vec<String>, String> {
    let project = env.local.project.as_str();
    let state_dir = std::path::absolute(&options.state_dir).map_err(|e| e.to_string())?;
    let existing = super::ps(docker, project)
        .await
        .map_err(|e| e.to_string())?;
    let mut tried = Vec::new();
    for (name, service) in &file.services {
        let Some(timings) = service.health(name).map_err(|e| e.to_string())? else {
            continue;
        };
        let image = docker
            .inspect_image(&service.image)
            .await
            .map_err(|e| format!("{name}: image {}: {e}", service.image))?;
        let want = super::desired(
            project,
            name,
            service,
            file,
            &state_dir,
            &image.id.unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        let current = existing.iter().find(|c| &c.service == name);
        if current.is_none_or(|c| c.config_hash.as_deref() == Some(want.hash.as_str())) {
            // New services have nothing serving to protect; unchanged ones stay.
            continue;
        }
        let mut body = want.body;
        if let Some(labels) = body.labels.as_mut() {
            // Not part of the project: `ps`, `logs` and `down` do not see it.
            labels.retain(|k, _| k != super::LABEL_PROJECT && k != super::LABEL_SERVICE);
            labels.insert("wactl.dev/candidate-of".to_owned(), project.to_owned());
        }
        if let Some(host) = body.host_config.as_mut() {
            host.port_bindings = None;
        }
        if let Some(endpoints) = body
            .networking_config
            .as_mut()
            .and_then(|n| n.endpoints_config.as_mut())
        {
            for endpoint in endpoints.values_mut() {
                endpoint.aliases = None;
            }
        }
        let candidate = format!("{project}-{name}-candidate");
        // A candidate left by an interrupted cycle.
        let _ = super::remove_container(docker, &candidate, 0).await;
        let id = docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::new()
                        .name(&candidate)
                        .build(),
                ),
                body,
            )
            .await
            .map_err(|e| format!("{name}: creating the candidate container: {e}"))?
            .id;
        let events = docker.events(Some(
            bollard::query_parameters::EventsOptionsBuilder::new()
                .filters(&super::filters(&[
                    ("type", "container".to_owned()),
                    ("container", id.clone()),
                ]))
                .build(),
        ));
        let started = docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| format!("{name}: starting the candidate container: {e}"));
        let probe = service
            .healthcheck
            .as_ref()
            .and_then(|h| super::Probe::from_test(&h.test, timings.timeout));
        let health = match started {
            Ok(()) => {
                super::wait_healthy(docker, &id, events, probe.as_ref(), timings.give_up_after())
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        };
        let logs = match &health {
            Ok(()) => String::new(),
            Err(_) => super::last_logs(docker, &id, super::FAILURE_LOG_LINES).await,
        };
        let _ = super::remove_container(docker, &id, 0).await;
        if let Err(reason) = health {
            return Err(format!(
                "{name}: the new container {reason}; the previous one keeps serving; last log lines:\n{logs}"
            ));
        }
        tried.push(name.clone());
    }
    Ok(tried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignored_paths_are_not_in_the_context() {
        let ignore = DockerIgnore::parse("target\n*.log\n!keep.log\n").expect("parses");
        let cases = [
            ("src/main.rs", true),
            ("target/debug/x", false),
            ("a.log", false),
            ("keep.log", true),
            ("", false),
        ];
        for (path, sent) in cases {
            assert_eq!(in_context(&ignore, path), sent, "{path}");
        }
        assert_eq!(cases.len(), 5);
    }

    /// A burst of writes within the debounce window is one burst; a write to an ignored
    /// file is none.
    #[tokio::test]
    async fn a_burst_is_one_and_ignored_files_are_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".dockerignore"), "ignored\n").expect("write");
        std::fs::create_dir(dir.path().join("src")).expect("mkdir");
        let (_watcher, mut bursts) =
            watch_context(dir.path(), Duration::from_millis(300)).expect("watches");
        for i in 0..10 {
            std::fs::write(dir.path().join("src/lib.rs"), format!("// {i}\n")).expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let burst = tokio::time::timeout(Duration::from_secs(10), bursts.recv())
            .await
            .expect("a burst within 10s")
            .expect("open");
        assert!(
            burst.paths.contains(&"src/lib.rs".to_owned()),
            "{:?}",
            burst.paths
        );
        std::fs::write(dir.path().join("ignored"), "x").expect("write");
        let next = tokio::time::timeout(Duration::from_secs(2), bursts.recv()).await;
        assert!(
            next.is_err(),
            "a second burst: {:?}",
            next.ok().flatten().map(|b| b.paths)
        );
    }
}
