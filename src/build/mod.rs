//! Building and pushing the service image through the Docker Engine API.
//!
//! The rendered Dockerfile and the repository tree (filtered by `.dockerignore` like
//! `docker build`) are streamed to the engine as one tar; nothing is written to disk.
//! Every image carries a content-hash tag of its inputs, so unchanged inputs are found
//! (locally or in the registry) and not built again. The caller owns the
//! [`bollard::Docker`] client; [`connect`] makes one the way the Docker CLI would.

mod context;
pub mod credentials;
mod dockerfile;
pub mod dockerignore;
pub mod git;

pub use context::{Context, DOCKERFILE_NAME, Entry, EntryKind};
pub use git::Revision;

use crate::config::Environment;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptions, TagImageOptions};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The engine the Docker CLI would use when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// Output lines of the failing step kept for the error.
const FAILED_STEP_LINES: usize = 40;
const ENGINE_CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "cannot reach the Docker Engine at {endpoint}: {message}\n  start Docker there, or point DOCKER_HOST at a running engine (unix:///path/to/docker.sock or tcp://127.0.0.1:2375)"
    )]
    Unreachable { endpoint: String, message: String },
    #[error("{}:{line}: {message}", path.display())]
    DockerIgnore {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("build context {}: {source}", path.display())]
    Context {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the rendered Dockerfile has no content (template `Dockerfile` rendered empty)")]
    EmptyDockerfile,
    #[error("Dockerfile line {line}: {message}\n  {line} | {text}")]
    Dockerfile {
        line: usize,
        text: String,
        message: String,
    },
    #[error("{}", step_failure(.step, .total, .line, .instruction, .output, .message))]
    StepFailed {
        step: usize,
        total: usize,
        instruction: String,
        line: Option<usize>,
        output: Vec<String>,
        message: String,
    },
    #[error("Docker Engine, while {action}: {message}")]
    Engine { action: String, message: String },
    #[error("{action} did not finish within {} s", timeout.as_secs())]
    Timeout { action: String, timeout: Duration },
    #[error(
        "environment `{environment}` has no image.registry to push to: set `image.registry` in its definition"
    )]
    NoRegistry { environment: String },
    #[error("credentials for {registry}: {message}")]
    Credentials { registry: String, message: String },
    #[error("push of {reference} failed: {message}{hint}")]
    Push {
        reference: String,
        message: String,
        hint: String,
    },
}

impl BuildError {
    /// Invalid input (exit code 2) rather than a failed operation.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::DockerIgnore { .. }
                | Self::EmptyDockerfile
                | Self::Dockerfile { .. }
                | Self::NoRegistry { .. }
        )
    }
}

fn step_failure(
    step: &usize,
    total: &usize,
    line: &Option<usize>,
    instruction: &str,
    output: &[String],
    message: &str,
) -> String {
    let place = line
        .map(|l| format!(" (Dockerfile line {l})"))
        .unwrap_or_default();
    let mut text = format!("step {step}/{total}{place} failed: {instruction}");
    if !output.is_empty() {
        text.push_str("\n  output of the step (last lines):");
        for l in output {
            text.push_str("\n  | ");
            text.push_str(l);
        }
    }
    text.push_str("\n  ");
    text.push_str(message);
    text
}

/// What the build needs beyond the definition and the Dockerfile.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Root of the build context (the repository checkout).
    pub context_dir: PathBuf,
    /// Build even when an image for the same content hash exists.
    pub force: bool,
    /// Also look for the content hash in the image's registry.
    pub check_registry: bool,
    /// Build without the engine's layer cache.
    pub no_cache: bool,
    /// Upper bound for the whole build (and for a push).
    pub timeout: Duration,
    /// Docker CLI configuration directory holding `config.json` (registry credentials);
    /// `None`: `DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config: Option<PathBuf>,
}

impl BuildOptions {
    pub fn new(context_dir: impl Into<PathBuf>) -> Self {
        Self {
            context_dir: context_dir.into(),
            force: false,
            check_registry: true,
            no_cache: false,
            timeout: Duration::from_secs(3600),
            docker_config: None,
        }
    }
}

/// A built (or found) image.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    /// `registry/repository`, without tag.
    pub name: String,
    /// What to deploy: `name@sha256:…` once the registry has it, else `name:content-…`.
    pub reference: String,
    /// Every reference the image was tagged with (`name:tag`).
    pub tags: Vec<String>,
    /// SHA-256 of every build input (context, Dockerfile, build args, target).
    pub content_hash: String,
    /// Local image id, when the image is in the engine.
    pub image_id: Option<String>,
    /// Registry manifest digest (`sha256:…`), once pushed or found there.
    pub digest: Option<String>,
    /// The build was skipped because the same inputs were built before.
    pub skipped: bool,
    /// Where the existing image was found when skipped.
    pub skip_reason: Option<String>,
    pub pushed: bool,
}

impl BuiltImage {
    /// `name@sha256:…`, the only reference `wactl deploy` should roll out.
    pub fn pinned(&self) -> Option<String> {
        self.digest.as_ref().map(|d| format!("{}@{d}", self.name))
    }

    fn content_tag(&self) -> String {
        content_tag(&self.content_hash)
    }
}

/// One thing that happened during a build or push, for [`BuildProgress`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BuildEvent {
    /// The context was scanned and hashed.
    Context {
        files: usize,
        bytes: u64,
        content_hash: String,
    },
    Skipped {
        reference: String,
        reason: String,
    },
    /// The engine has read the whole context (it reports its first step).
    ContextSent {
        bytes: u64,
        seconds: f64,
    },
    Step {
        number: usize,
        total: usize,
        instruction: String,
        line: Option<usize>,
    },
    Output {
        line: String,
    },
    Built {
        image_id: String,
    },
    Tagged {
        reference: String,
    },
    Pushing {
        reference: String,
    },
    PushStatus {
        status: String,
    },
    Pushed {
        reference: String,
        digest: String,
    },
    Warning {
        message: String,
    },
}

/// Receives build events as they happen (the `ui` draws them).
pub trait BuildProgress: Send + Sync {
    fn event(&self, event: &BuildEvent);
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl BuildProgress for NoProgress {
    fn event(&self, _event: &BuildEvent) {}
}

/// The engine endpoint: `DOCKER_HOST`, else the default socket.
pub fn docker_endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned())
}

/// Connects the way the Docker CLI does (`DOCKER_HOST`, unix or tcp, else the default
/// socket) and negotiates the API version, so engines from 20.10 (API 1.41) on work.
pub async fn connect() -> Result<Docker, BuildError> {
    let endpoint = docker_endpoint();
    let unreachable = |message: String| BuildError::Unreachable {
        endpoint: endpoint.clone(),
        message,
    };
    let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
    let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
        .await
        .map_err(|_| unreachable("no answer within 10s".to_owned()))?
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(docker)
}

/// `content-<24 hex>`: the tag that identifies the build inputs.
pub fn content_tag(content_hash: &str) -> String {
    format!("content-{}", &content_hash[..content_hash.len().min(24)])
}

/// Builds the image of `env` from `rendered_dockerfile` (the `Dockerfile` of
/// [`crate::render::render`]) and the context at `options.context_dir`, or finds the image
/// already built from the same inputs.
pub async fn build(
    docker: &Docker,
    env: &Environment,
    rendered_dockerfile: &str,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<BuiltImage, BuildError> {
    let (context, mut image, revision) =
        prepare(env, rendered_dockerfile, options, progress).await?;
    if !options.force
        && let Some(found) = find_existing(docker, env, &image, options, progress).await?
    {
        progress.event(&BuildEvent::Skipped {
            reference: found.reference.clone(),
            reason: found.skip_reason.clone().unwrap_or_default(),
        });
        return Ok(found);
    }
    build_new(
        docker,
        env,
        rendered_dockerfile,
        options,
        progress,
        context,
        &revision,
        &mut image,
    )
    .await?;
    Ok(image)
}

/// What a deploy would deploy, without building: the image built from the same inputs
/// when one exists (pinned by digest when the registry or a push told one), else the
/// content-addressed reference a build would produce. `wactl diff` uses it so that it
/// compares what `wactl deploy` applies.
pub async fn resolve_without_building(
    docker: &Docker,
    env: &Environment,
    rendered_dockerfile: &str,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<ResolvedImage, BuildError> {
    let (_, image, _) = prepare(env, rendered_dockerfile, options, progress).await?;
    Ok(
        match find_existing(docker, env, &image, options, progress).await? {
            Some(found) => match found.pinned() {
                Some(pinned) => ResolvedImage::Existing(pinned),
                None => ResolvedImage::NotPushed(found.reference),
            },
            None => ResolvedImage::WouldBuild(image.reference),
        },
    )
}

/// What the registry says about an image reference given on the command line
/// (`deploy --image`), before anything uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryImage {
    /// The registry has it: its manifest digest (`sha256:…`).
    Found { digest: String },
    /// The registry answered that it has no such image or tag.
    Missing { registry: String },
    /// The registry (or the engine that asks it) could not be asked: why.
    Unchecked { reason: String },
}

/// Asks the registry of `reference` (through the Docker Engine's distribution API, with the
/// credentials of `docker_config`) whether it has that image, and its digest.
pub async fn look_up(reference: &str, docker_config: Option<&std::path::Path>) -> RegistryImage {
    let registry = registry_of(reference);
    let docker = match connect().await {
        Ok(docker) => docker,
        Err(e) => {
            return RegistryImage::Unchecked {
                reason: e.to_string(),
            };
        }
    };
    let credentials = credentials::for_registry(docker_config, &registry)
        .await
        .ok()
        .flatten();
    let looked_up = tokio::time::timeout(
        ENGINE_CALL_TIMEOUT,
        docker.inspect_registry_image(reference, credentials),
    )
    .await;
    match looked_up {
        Ok(Ok(inspect)) => match inspect.descriptor.digest {
            Some(digest) => RegistryImage::Found { digest },
            None => RegistryImage::Unchecked {
                reason: format!("{registry} gave no digest for {reference}"),
            },
        },
        Ok(Err(e)) if is_not_found(&e) => RegistryImage::Missing { registry },
        Ok(Err(e)) => RegistryImage::Unchecked {
            reason: format!("could not ask {registry}: {}", engine_message(&e)),
        },
        Err(_) => RegistryImage::Unchecked {
            reason: format!(
                "{registry} did not answer within {}s",
                ENGINE_CALL_TIMEOUT.as_secs()
            ),
        },
    }
}

/// The registry host of an image reference: its first path part when that looks like a
/// host (has a `.` or `:`, or is `localhost`), else Docker Hub.
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_owned(),
        _ => "docker.io".to_owned(),
    }
}

/// The image a deploy would apply, as [`resolve_without_building`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedImage {
    /// Built from the same inputs and in the registry: `name@sha256:…`.
    Existing(String),
    /// Built from the same inputs but not pushed yet: its content tag (a deploy pushes it
    /// and applies the digest the push returns).
    NotPushed(String),
    /// No image from these inputs exists: a deploy builds `name:content-…` first.
    WouldBuild(String),
}

impl ResolvedImage {
    pub fn reference(&self) -> &str {
        match self {
            Self::Existing(r) | Self::NotPushed(r) | Self::WouldBuild(r) => r,
        }
    }
}

/// Scans the context and names the image its inputs make, before any engine call.
async fn prepare(
    env: &Environment,
    rendered_dockerfile: &str,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<(Context, BuiltImage, Revision), BuildError> {
    if rendered_dockerfile.trim().is_empty() {
        return Err(BuildError::EmptyDockerfile);
    }
    // The git processes run while the context is hashed: neither needs the other.
    let scan = {
        let root = options.context_dir.clone();
        let dockerfile = rendered_dockerfile.to_owned();
        let args = env.image.build_args.clone();
        let target = env.image.target.clone();
        tokio::task::spawn_blocking(move || {
            Context::scan(&root, &dockerfile, &args, target.as_deref())
        })
    };
    let (context, revision) = tokio::join!(scan, git::revision(&options.context_dir));
    let context = context.map_err(|e| BuildError::Engine {
        action: "scanning the build context".to_owned(),
        message: e.to_string(),
    })??;
    progress.event(&BuildEvent::Context {
        files: context.entries().len(),
        bytes: context.content_bytes(),
        content_hash: context.content_hash().to_owned(),
    });

    let name = env.image.name();
    let image = BuiltImage {
        name: name.clone(),
        reference: format!("{name}:{}", content_tag(context.content_hash())),
        tags: tags(env, context.content_hash(), &revision),
        content_hash: context.content_hash().to_owned(),
        image_id: None,
        digest: None,
        skipped: false,
        skip_reason: None,
        pushed: false,
    };
    Ok((context, image, revision))
}

#[allow(clippy::too_many_arguments)]
async fn build_new(
    docker: &Docker,
    env: &Environment,
    rendered_dockerfile: &str,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
    mut context: Context,
    revision: &Revision,
    image: &mut BuiltImage,
) -> Result<(), BuildError> {
    let labels = labels(env, revision);
    // The engine turns each label of the API's `labels` parameter into a LABEL step of its
    // own (a container created and committed per label); one LABEL instruction appended
    // to the Dockerfile sent gives the same image in one step. With a target stage the
    // labels must land on that stage, which only the parameter does.
    let label_line = env
        .image
        .target
        .is_none()
        .then(|| label_instruction(rendered_dockerfile, &labels))
        .flatten();
    let sent_dockerfile = match &label_line {
        Some(line) => {
            let sent = format!("{}\n{line}\n", rendered_dockerfile.trim_end());
            context.send_dockerfile(sent.clone());
            sent
        }
        None => rendered_dockerfile.to_owned(),
    };
    let build_args: HashMap<String, String> = env
        .image
        .build_args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut builder = BuildImageOptionsBuilder::default()
        .dockerfile(DOCKERFILE_NAME)
        .t(&image.reference)
        .rm(true)
        .forcerm(true)
        .nocache(options.no_cache)
        .buildargs(&build_args);
    if label_line.is_none() {
        builder = builder.labels(&labels);
    }
    if let Some(target) = &env.image.target {
        builder = builder.target(target);
    }
    let (tar, sent) = context.stream();
    let docker_long = docker.clone().with_timeout(options.timeout);
    let started = std::time::Instant::now();
    let run = async {
        let mut stream =
            docker_long.build_image(builder.build(), None, Some(bollard::body_try_stream(tar)));
        let mut state = StepState::new(&sent_dockerfile);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        for line in state.push_text(&text) {
                            state.handle_line(line, progress, &sent, started);
                        }
                    }
                    if let Some(status) = info.status {
                        progress.event(&BuildEvent::Output { line: status });
                    }
                    if let Some(id) = info.aux.and_then(|aux| aux.id) {
                        state.image_id = Some(id);
                    }
                }
                Err(error) => {
                    for line in state.flush() {
                        state.handle_line(line, progress, &sent, started);
                    }
                    return Err(state.failure(error));
                }
            }
        }
        for line in state.flush() {
            state.handle_line(line, progress, &sent, started);
        }
        Ok(state.image_id)
    };
    let image_id = tokio::time::timeout(options.timeout, run)
        .await
        .map_err(|_| BuildError::Timeout {
            action: format!("building {}", image.reference),
            timeout: options.timeout,
        })??;
    let image_id = match image_id {
        Some(id) => id,
        None => inspect_id(docker, &image.reference)
            .await?
            .ok_or_else(|| BuildError::Engine {
                action: format!("building {}", image.reference),
                message: "the build finished without producing an image".to_owned(),
            })?,
    };
    progress.event(&BuildEvent::Built {
        image_id: image_id.clone(),
    });
    tag_all(docker, image, progress).await?;
    image.image_id = Some(image_id);
    Ok(())
}

/// Pushes every tag of `image` to its registry with the Docker CLI's credentials and
/// returns it pinned by digest (`reference` = `name@sha256:…`).
pub async fn push(
    docker: &Docker,
    env: &Environment,
    image: &BuiltImage,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<BuiltImage, BuildError> {
    let Some(registry) = env.image.registry.clone() else {
        return Err(BuildError::NoRegistry {
            environment: env.name.clone(),
        });
    };
    let mut pushed = image.clone();
    if image.image_id.is_none() {
        // Found in the registry and not present locally: nothing to push.
        return Ok(pushed);
    }
    let credentials =
        credentials::for_registry(options.docker_config.as_deref(), &registry).await?;
    let docker_long = docker.clone().with_timeout(options.timeout);
    let mut digest = None;
    for reference in &image.tags {
        let tag = reference
            .rsplit_once(':')
            .map(|(_, t)| t.to_owned())
            .unwrap_or_default();
        progress.event(&BuildEvent::Pushing {
            reference: reference.clone(),
        });
        let found = tokio::time::timeout(
            options.timeout,
            push_tag(
                &docker_long,
                &image.name,
                &tag,
                credentials.clone(),
                progress,
            ),
        )
        .await
        .map_err(|_| BuildError::Timeout {
            action: format!("pushing {reference}"),
            timeout: options.timeout,
        })?
        .map_err(|message| BuildError::Push {
            reference: reference.clone(),
            hint: push_hint(&message, &registry, credentials.is_some(), options),
            message,
        })?;
        if let Some(d) = found {
            progress.event(&BuildEvent::Pushed {
                reference: reference.clone(),
                digest: d.clone(),
            });
            digest = Some(d);
        }
    }
    let digest = match digest {
        Some(d) => d,
        None => repo_digest(docker, &image.reference, &image.name)
            .await?
            .ok_or_else(|| BuildError::Push {
                reference: image.reference.clone(),
                message: "the registry reported no digest".to_owned(),
                hint: String::new(),
            })?,
    };
    pushed.reference = format!("{}@{digest}", image.name);
    pushed.digest = Some(digest);
    pushed.pushed = true;
    Ok(pushed)
}

async fn push_tag(
    docker: &Docker,
    name: &str,
    tag: &str,
    credentials: Option<DockerCredentials>,
    progress: &dyn BuildProgress,
) -> Result<Option<String>, String> {
    let options = PushImageOptions {
        tag: Some(tag.to_owned()),
        platform: None,
    };
    // Without credentials bollard still sends an (empty) auth header, as the CLI does.
    let mut stream = docker.push_image(name, Some(options), credentials);
    let mut digest = None;
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| engine_message(&e))?;
        if let Some(status) = info.status {
            if let Some(d) = digest_in_status(&status) {
                digest = Some(d);
            }
            progress.event(&BuildEvent::PushStatus { status });
        }
    }
    Ok(digest)
}

/// `latest: digest: sha256:abc… size: 1234` → `sha256:abc…`.
fn digest_in_status(status: &str) -> Option<String> {
    let at = status.find("digest: sha256:")?;
    let rest = &status[at + "digest: ".len()..];
    let digest: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == ':' || c.is_ascii_alphanumeric())
        .collect();
    (digest.len() == "sha256:".len() + 64).then_some(digest)
}

fn push_hint(
    message: &str,
    registry: &str,
    had_credentials: bool,
    options: &BuildOptions,
) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("no basic auth")
        || lower.contains("denied")
    {
        let config = credentials::config_path(options.docker_config.as_deref())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.docker/config.json".to_owned());
        if had_credentials {
            format!(
                "\n  the credentials for {registry} in {config} were refused: run `docker login {registry}` again"
            )
        } else {
            format!(
                "\n  no credentials for {registry} in {config}: run `docker login {registry}` (or set DOCKER_CONFIG to a directory whose config.json has them)"
            )
        }
    } else {
        String::new()
    }
}

/// Looks for an image built from the same inputs: in the engine, then in the registry.
async fn find_existing(
    docker: &Docker,
    env: &Environment,
    image: &BuiltImage,
    options: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<Option<BuiltImage>, BuildError> {
    if let Some(id) = inspect_id(docker, &image.reference).await? {
        let mut found = image.clone();
        found.image_id = Some(id);
        found.skipped = true;
        found.skip_reason = Some("an image built from the same inputs exists locally".to_owned());
        tag_all(docker, &found, progress).await?;
        if let Some(digest) = repo_digest(docker, &image.reference, &image.name).await? {
            found.digest = Some(digest);
        }
        return Ok(Some(found));
    }
    let Some(registry) = env
        .image
        .registry
        .as_deref()
        .filter(|_| options.check_registry)
    else {
        return Ok(None);
    };
    let credentials =
        match credentials::for_registry(options.docker_config.as_deref(), registry).await {
            Ok(c) => c,
            Err(e) => {
                progress.event(&BuildEvent::Warning {
                    message: e.to_string(),
                });
                None
            }
        };
    let looked_up = tokio::time::timeout(
        ENGINE_CALL_TIMEOUT,
        docker.inspect_registry_image(&image.reference, credentials),
    )
    .await;
    match looked_up {
        Ok(Ok(inspect)) => {
            let Some(digest) = inspect.descriptor.digest else {
                return Ok(None);
            };
            let mut found = image.clone();
            found.reference = format!("{}@{digest}", image.name);
            found.digest = Some(digest);
            found.skipped = true;
            found.skip_reason = Some(format!(
                "{registry} has an image built from the same inputs ({})",
                image.content_tag()
            ));
            Ok(Some(found))
        }
        Ok(Err(e)) if is_not_found(&e) => Ok(None),
        Ok(Err(e)) => {
            progress.event(&BuildEvent::Warning {
                message: format!(
                    "could not ask {registry} for {}: {}; building",
                    image.reference,
                    engine_message(&e)
                ),
            });
            Ok(None)
        }
        Err(_) => {
            progress.event(&BuildEvent::Warning {
                message: format!(
                    "{registry} did not answer within {}s; building",
                    ENGINE_CALL_TIMEOUT.as_secs()
                ),
            });
            Ok(None)
        }
    }
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    match error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            *status_code == 404
                || message.contains("manifest unknown")
                || message.contains("not found")
        }
        _ => false,
    }
}

fn engine_message(error: &bollard::errors::Error) -> String {
    use bollard::errors::Error;
    match error {
        Error::DockerResponseServerError { message, .. } => message.clone(),
        Error::DockerStreamError { error } => error.clone(),
        // The engine went away mid-operation: say where it was and the cause underneath
        // ("Connection refused", "No such file"), not just "client error (Connect)".
        Error::HyperLegacyError { .. }
        | Error::HyperResponseError { .. }
        | Error::IOError { .. }
        | Error::SocketNotFoundError(_) => {
            let mut causes = vec![error.to_string()];
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !causes.iter().any(|c| c.contains(&text)) {
                    causes.push(text);
                }
                source = cause.source();
            }
            format!(
                "lost the connection to the Docker Engine at {} ({}); is it still running?",
                docker_endpoint(),
                causes.join(": ")
            )
        }
        other => other.to_string(),
    }
}

/// The image id of `reference`, or `None` when the engine does not have it.
async fn inspect_id(docker: &Docker, reference: &str) -> Result<Option<String>, BuildError> {
    let action = || format!("looking up {reference}");
    match tokio::time::timeout(ENGINE_CALL_TIMEOUT, docker.inspect_image(reference)).await {
        Ok(Ok(image)) => Ok(image.id),
        Ok(Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        })) => Ok(None),
        Ok(Err(e)) => Err(BuildError::Engine {
            action: action(),
            message: engine_message(&e),
        }),
        Err(_) => Err(BuildError::Timeout {
            action: action(),
            timeout: ENGINE_CALL_TIMEOUT,
        }),
    }
}

/// The registry digest the engine recorded for `name` when it pushed or pulled `reference`.
async fn repo_digest(
    docker: &Docker,
    reference: &str,
    name: &str,
) -> Result<Option<String>, BuildError> {
    let action = || format!("looking up {reference}");
    let image =
        match tokio::time::timeout(ENGINE_CALL_TIMEOUT, docker.inspect_image(reference)).await {
            Ok(Ok(image)) => image,
            Ok(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            })) => return Ok(None),
            Ok(Err(e)) => {
                return Err(BuildError::Engine {
                    action: action(),
                    message: engine_message(&e),
                });
            }
            Err(_) => {
                return Err(BuildError::Timeout {
                    action: action(),
                    timeout: ENGINE_CALL_TIMEOUT,
                });
            }
        };
    let prefix = format!("{name}@");
    Ok(image
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find_map(|d| d.strip_prefix(&prefix).map(str::to_owned)))
}

/// Adds every other tag to the image built under its content tag, all at once (the engine
/// takes them in any order); each is reported as it lands.
async fn tag_all(
    docker: &Docker,
    image: &BuiltImage,
    progress: &dyn BuildProgress,
) -> Result<(), BuildError> {
    let source = format!("{}:{}", image.name, image.content_tag());
    let source = source.as_str();
    let tagging = image
        .tags
        .iter()
        .filter(|reference| reference.as_str() != source)
        .map(|reference| async move {
            let tag = reference
                .rsplit_once(':')
                .map(|(_, t)| t)
                .unwrap_or("latest");
            let options = TagImageOptions {
                repo: Some(image.name.clone()),
                tag: Some(tag.to_owned()),
            };
            let action = || format!("tagging {source} as {reference}");
            tokio::time::timeout(ENGINE_CALL_TIMEOUT, docker.tag_image(source, Some(options)))
                .await
                .map_err(|_| BuildError::Timeout {
                    action: action(),
                    timeout: ENGINE_CALL_TIMEOUT,
                })?
                .map_err(|e| BuildError::Engine {
                    action: action(),
                    message: engine_message(&e),
                })?;
            progress.event(&BuildEvent::Tagged {
                reference: reference.clone(),
            });
            Ok(())
        });
    futures_util::future::try_join_all(tagging).await?;
    Ok(())
}

/// Content hash, commit, release version and the definition's tag, without duplicates.
fn tags(env: &Environment, content_hash: &str, revision: &Revision) -> Vec<String> {
    let name = env.image.name();
    let mut tags = vec![content_tag(content_hash)];
    tags.extend(revision.tag());
    tags.extend(revision.version.clone());
    tags.push(env.image.tag.clone());
    let mut seen = std::collections::BTreeSet::new();
    tags.into_iter()
        .filter(|t| seen.insert(t.clone()))
        .map(|t| format!("{name}:{t}"))
        .collect()
}

/// OCI annotations: where the source is, which revision, when, which version.
fn labels(env: &Environment, revision: &Revision) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let source = env
        .github
        .repository
        .as_ref()
        .map(|r| format!("https://github.com/{r}"))
        .unwrap_or_else(|| env!("CARGO_PKG_REPOSITORY").to_owned());
    labels.insert("org.opencontainers.image.source".to_owned(), source);
    if let Some(commit) = &revision.commit {
        labels.insert(
            "org.opencontainers.image.revision".to_owned(),
            commit.clone(),
        );
    }
    labels.insert(
        "org.opencontainers.image.created".to_owned(),
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    );
    let version = revision
        .version
        .clone()
        .or_else(|| revision.tag())
        .unwrap_or_else(|| "unknown".to_owned());
    labels.insert("org.opencontainers.image.version".to_owned(), version);
    labels.insert(
        "org.opencontainers.image.title".to_owned(),
        env.app.name.clone(),
    );
    labels
}

/// `LABEL "key"='value' …` for `labels`, or `None` when a value would need escaping
/// (single quote, backslash, control character) or the Dockerfile's last line continues
/// onto the next: then the labels go through the build API's parameter instead.
fn label_instruction(dockerfile: &str, labels: &HashMap<String, String>) -> Option<String> {
    if labels.is_empty() || dockerfile.trim_end().ends_with('\\') {
        return None;
    }
    let sorted: std::collections::BTreeMap<_, _> = labels.iter().collect();
    let mut line = String::from("LABEL");
    for (key, value) in sorted {
        let plain = |text: &str| {
            !text
                .chars()
                .any(|c| c == '\'' || c == '"' || c == '\\' || c.is_control())
        };
        if !plain(key) || !plain(value) {
            return None;
        }
        // Single quotes keep `$` from being expanded, as the engine's own label step does.
        line.push_str(&format!(" \"{key}\"='{value}'"));
    }
    Some(line)
}

/// Follows the classic builder's output: the current step, its output, its failure.
struct StepState<'a> {
    dockerfile: &'a str,
    instructions: Vec<dockerfile::Instruction>,
    partial: String,
    step: Option<(usize, usize, String)>,
    output: std::collections::VecDeque<String>,
    image_id: Option<String>,
    context_sent: bool,
}

impl<'a> StepState<'a> {
    fn new(dockerfile: &'a str) -> Self {
        Self {
            dockerfile,
            instructions: dockerfile::instructions(dockerfile),
            partial: String::new(),
            step: None,
            output: std::collections::VecDeque::new(),
            image_id: None,
            context_sent: false,
        }
    }

    /// Complete lines of `text`, keeping an unfinished last line for later.
    fn push_text(&mut self, text: &str) -> Vec<String> {
        self.partial.push_str(text);
        let mut lines = Vec::new();
        while let Some(at) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=at).collect();
            lines.push(line.trim_end_matches(['\n', '\r']).to_owned());
        }
        lines
    }

    fn flush(&mut self) -> Vec<String> {
        let rest = std::mem::take(&mut self.partial);
        if rest.trim().is_empty() {
            Vec::new()
        } else {
            vec![rest]
        }
    }

    fn handle_line(
        &mut self,
        line: String,
        progress: &dyn BuildProgress,
        sent: &std::sync::atomic::AtomicU64,
        started: std::time::Instant,
    ) {
        if !self.context_sent {
            self.context_sent = true;
            progress.event(&BuildEvent::ContextSent {
                bytes: sent.load(Ordering::Relaxed),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        // The engine colours a step's stderr; the progress shows plain text.
        let line = console::strip_ansi_codes(&line).into_owned();
        if let Some((number, total, instruction)) = dockerfile::parse_step(&line) {
            let line_no = self
                .instructions
                .get(number.wrapping_sub(1))
                .map(|i| i.line);
            progress.event(&BuildEvent::Step {
                number,
                total,
                instruction: instruction.clone(),
                line: line_no,
            });
            self.step = Some((number, total, instruction));
            self.output.clear();
            return;
        }
        if let Some(id) = line.strip_prefix("Successfully built ") {
            self.image_id.get_or_insert_with(|| id.trim().to_owned());
        }
        if self.output.len() == FAILED_STEP_LINES {
            self.output.pop_front();
        }
        self.output.push_back(line.clone());
        progress.event(&BuildEvent::Output { line });
    }

    fn failure(&self, error: bollard::errors::Error) -> BuildError {
        let message = engine_message(&error);
        if let Some(line) = dockerfile::line_in_message(&message)
            .filter(|_| message.to_ascii_lowercase().contains("dockerfile"))
            && let Some(text) = dockerfile::line(self.dockerfile, line)
        {
            return BuildError::Dockerfile {
                line,
                text: text.to_owned(),
                message,
            };
        }
        match &self.step {
            Some((step, total, instruction)) => BuildError::StepFailed {
                step: *step,
                total: *total,
                instruction: instruction.clone(),
                line: self.instructions.get(step.wrapping_sub(1)).map(|i| i.line),
                output: self
                    .output
                    .iter()
                    .filter(|l| !l.starts_with(" ---> "))
                    .cloned()
                    .collect(),
                message,
            },
            None => BuildError::Engine {
                action: "building the image".to_owned(),
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_one_instruction_in_key_order_unless_a_value_needs_escaping() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let plain = labels(&[
            ("org.opencontainers.image.title", "address-service"),
            ("org.opencontainers.image.created", "2026-12-01T00:00:00Z"),
            ("org.opencontainers.image.version", "$HOME"),
        ]);
        assert_eq!(
            label_instruction("FROM scratch\n", &plain).as_deref(),
            Some(
                "LABEL \"org.opencontainers.image.created\"='2026-12-01T00:00:00Z' \
                 \"org.opencontainers.image.title\"='address-service' \
                 \"org.opencontainers.image.version\"='$HOME'"
            )
        );
        let mut tried = 0;
        for value in ["it's", "a\\b", "two\nlines", "say \"hi\""] {
            tried += 1;
            let odd = labels(&[("org.opencontainers.image.title", value)]);
            assert_eq!(label_instruction("FROM scratch\n", &odd), None, "{value:?}");
        }
        assert_eq!(tried, 4);
        assert_eq!(
            label_instruction("FROM scratch\nRUN true \\\n", &plain),
            None
        );
        assert_eq!(label_instruction("FROM scratch\n", &HashMap::new()), None);
    }

    #[test]
    fn the_registry_of_a_reference_is_its_host_part() {
        let cases = [
            (
                "127.0.0.1:5000/world-address/address-service:v1",
                "127.0.0.1:5000",
            ),
            ("ghcr.io/world-address/address-service:v1", "ghcr.io"),
            ("localhost/app:1", "localhost"),
            ("world-address/address-service:v1", "docker.io"),
            ("nginx:1.27", "docker.io"),
        ];
        for (reference, registry) in cases {
            assert_eq!(registry_of(reference), registry, "{reference}");
        }
        assert_eq!(cases.len(), 5);
    }

    #[test]
    fn a_lost_engine_is_named_with_the_cause() {
        let error = bollard::errors::Error::IOError {
            err: std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
            ),
        };
        let message = engine_message(&error);
        assert!(
            message.starts_with("lost the connection to the Docker Engine at ")
                && message.contains("Connection refused (os error 111)")
                && message.ends_with("is it still running?"),
            "{message}"
        );
    }

    #[test]
    fn colour_sequences_are_stripped() {
        assert_eq!(
            console::strip_ansi_codes("\u{1b}[0m\u{1b}[91m   Compiling\u{1b}[0m x"),
            "   Compiling x"
        );
    }

    #[test]
    fn push_status_digests_are_read() {
        let status = "content-abc: digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef size: 1573";
        assert_eq!(
            digest_in_status(status).as_deref(),
            Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        );
        assert_eq!(digest_in_status("Pushed"), None);
    }

    #[test]
    fn a_failed_step_names_its_line_and_output() {
        let dockerfile = "FROM a\n# c\nRUN ok\nRUN false\n";
        let mut state = StepState::new(dockerfile);
        let sent = std::sync::atomic::AtomicU64::new(0);
        let now = std::time::Instant::now();
        for text in [
            "Step 3/3 : RUN false\n",
            " ---> Running in 1\nsome ",
            "output\n",
        ] {
            for line in state.push_text(text) {
                state.handle_line(line, &NoProgress, &sent, now);
            }
        }
        let error = state.failure(bollard::errors::Error::DockerStreamError {
            error: "The command '/bin/sh -c false' returned a non-zero code: 1".to_owned(),
        });
        let text = error.to_string();
        assert!(
            text.contains("step 3/3 (Dockerfile line 4) failed: RUN false"),
            "{text}"
        );
        assert!(text.contains("| some output"), "{text}");
        assert!(text.contains("non-zero code: 1"), "{text}");
    }

    #[test]
    fn a_parse_error_shows_the_dockerfile_line() {
        let state = StepState::new("FROM a\nBOGUS x\n");
        let error = state.failure(bollard::errors::Error::DockerResponseServerError {
            status_code: 400,
            message: "dockerfile parse error line 2: unknown instruction: BOGUS".to_owned(),
        });
        assert!(matches!(error, BuildError::Dockerfile { line: 2, .. }));
        assert!(error.to_string().contains("2 | BOGUS x"), "{error}");
        assert!(error.is_invalid_input());
    }
}
