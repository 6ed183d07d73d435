//! `wactl render ENV [--out DIR|-]`

use super::GlobalArgs;
use crate::render::{self, RenderOptions};
use crate::ui::Ui;
use std::path::PathBuf;

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
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    if let Some(image) = &args.image {
        crate::config::names::check_image_reference(image)
            .map_err(|message| anyhow::anyhow!("--image: {message}"))?;
    }
    let options = RenderOptions {
        image: args.image.clone(),
        templates: args.templates.clone(),
    };
    let rendered = render::render(&env, &options)?;
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
