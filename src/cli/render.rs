//! `wactl render ENV [--out DIR|-]`

use super::GlobalArgs;
use crate::render;
use crate::ui::Ui;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  wactl render staging                 writes build/staging/
  wactl render dev --out deploy/dev    replaces only the files an earlier render wrote there
  wactl render dev --out - | less      every file as one YAML stream on stdout")]
pub struct Args {
    /// Environment to render.
    pub environment: String,
    /// Output directory, default `build/ENV`; `-` writes one multi-document stream to
    /// stdout. In a directory, wactl replaces only the files it rendered there before
    /// (listed in `.wactl-rendered.json`) and refuses to overwrite any other file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Directory of template overrides (relative paths as in `templates/`).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Image reference to deploy instead of the definition's tag.
    #[arg(long)]
    pub image: Option<String>,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    // The built-in templates compile on a thread of their own while the definition is read,
    // and git answers in separate processes meanwhile when the tag comes from it.
    let (env, rendered) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let compiling = scope.spawn(render::BuiltInTemplates::compile);
        let env = crate::config::load(&global.env_dir, &args.environment)?;
        if let Some(image) = &args.image {
            crate::config::names::check_image_reference(image)
                .map_err(|message| anyhow::anyhow!("--image: {message}"))?;
        }
        let image = match &args.image {
            Some(image) => ImageLookup::Given(image.clone()),
            None => ImageLookup::start(&env, scope)?,
        };
        let built_ins = compiling
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        let renderer =
            render::Renderer::with_built_ins(&env, args.templates.as_deref(), built_ins)?;
        let image = image.finish(&env)?;
        let rendered = renderer.render(image.as_deref())?;
        Ok((env, rendered))
    })?;
    if args.out.as_deref() == Some(std::path::Path::new("-")) {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(rendered.to_stream().as_bytes())
            .and_then(|()| stdout.flush())
        {
            // A reader that stops early (`| head`) ends the command quietly.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => return Ok(()),
        }
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("build").join(&env.name));
    rendered.write(&out)?;
    ui.success(&format!(
        "rendered {} files ({} Kubernetes objects) to {}",
        rendered.files.len(),
        rendered.manifests.len(),
        out.display()
    ));
    ui.json(&serde_json::json!({
        "environment": env.name,
        "out": out,
        "files": rendered.files.keys().collect::<Vec<_>>(),
    }));
    Ok(())
}

/// The tag every environment inherits unless it names one, which names no build.
const FLOATING_TAG: &str = "latest";

/// The image to render: `--image`, the definition's own tag, or the tag `wactl build`
/// would give the current sources, looked up on a thread of its own.
enum ImageLookup<'scope> {
    Given(String),
    Definition,
    Git(std::thread::ScopedJoinHandle<'scope, anyhow::Result<crate::build::Revision>>),
}

impl<'scope> ImageLookup<'scope> {
    /// The image to render when `--image` is not given. A definition's own tag is used as
    /// it is, except `latest`: a rendered tree never holds it. Then the tag `wactl build`
    /// gives the current sources (`git-<commit>[-dirty]`, or the release version) is used,
    /// and a protected environment is refused: what reaches it must be named exactly.
    fn start<'env>(
        env: &crate::config::Environment,
        scope: &'scope std::thread::Scope<'scope, 'env>,
    ) -> Result<Self, RenderInputError> {
        if env.image.tag != FLOATING_TAG {
            return Ok(Self::Definition);
        }
        if env.protected {
            return Err(RenderInputError::FloatingTagInProtected {
                environment: env.name.clone(),
            });
        }
        // Git finds the checkout from the current directory as `wactl build` finds its
        // context (the checkout's top), so both name the same revision.
        Ok(Self::Git(scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(runtime.block_on(crate::build::git::revision(Path::new("."))))
        })))
    }

    fn finish(self, env: &crate::config::Environment) -> Result<Option<String>, RenderInputError> {
        let handle = match self {
            Self::Given(image) => return Ok(Some(image)),
            Self::Definition => return Ok(None),
            Self::Git(handle) => handle,
        };
        let no_revision = |reason: String| RenderInputError::NoRevision {
            environment: env.name.clone(),
            reason,
        };
        let revision = handle
            .join()
            .map_err(|_| no_revision("the git lookup stopped".to_owned()))?
            .map_err(|e| no_revision(e.to_string()))?;
        let tag = revision
            .version
            .clone()
            .or_else(|| revision.tag())
            .ok_or_else(|| {
                let dir =
                    super::build::default_context_dir().unwrap_or_else(|_| PathBuf::from("."));
                no_revision(format!("{} is not a git checkout", dir.display()))
            })?;
        Ok(Some(format!("{}:{tag}", env.image.name())))
    }
}

/// What `render` needs from the user that the definition does not say.
#[derive(Debug, thiserror::Error)]
pub enum RenderInputError {
    #[error(
        "environment {environment} is protected and its image tag is `latest`, which names no particular build; pass --image with a digest (NAME@sha256:…) or a release tag"
    )]
    FloatingTagInProtected { environment: String },
    #[error(
        "environment {environment}: image tag `latest` names no particular build, and the tag a build would make is unknown ({reason}); pass --image"
    )]
    NoRevision { environment: String, reason: String },
}
