//! `wactl render ENV [--out DIR]`

use super::GlobalArgs;
use crate::render::{self, RenderOptions};
use crate::ui::Ui;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment to render.
    pub environment: String,
    /// Output directory (replaced as a whole); default `build/ENV`.
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
