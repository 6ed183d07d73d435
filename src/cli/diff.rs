//! `wactl diff ENV`

use super::GlobalArgs;
use crate::cluster::ApplyOptions;
use crate::deploy::{self, DeployError};
use crate::render::RenderOptions;
use crate::ui::Ui;
use crate::ui::deploy::DeployUi;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment to compare with its cluster.
    pub environment: String,
    /// Image reference to render instead of the definition's tag.
    #[arg(long)]
    pub image: Option<String>,
    /// Directory of template overrides (relative paths as in `templates/`).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Dry-run as if taking over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Post the plan on this pull request (updating wactl's earlier comment).
    #[arg(long, value_name = "PR")]
    pub comment_pr: Option<u64>,
    /// Fail when the pull request comment cannot be posted (default: warn).
    #[arg(long)]
    pub require_github: bool,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    if let Some(image) = &args.image {
        crate::config::names::check_image_reference(image)
            .map_err(|message| DeployError::InvalidImage { message })?;
    }
    let render = RenderOptions {
        image: args.image.clone(),
        templates: args.templates.clone(),
    };
    let apply = ApplyOptions {
        force_conflicts: args.force_conflicts,
    };
    let access = super::deploy::access(global);
    super::block_on(async {
        // Built inside the runtime that uses it: its HTTP client spawns a worker there.
        let reporter = match args.comment_pr {
            Some(pr) => Some((
                pr,
                crate::github::Reporter::from_env(&env, args.require_github)?,
            )),
            None => None,
        };
        let client = crate::cluster::connect(&env, &access).await?;
        let plan = deploy::plan(&client, &env, &render, apply).await?;
        DeployUi::new(ui, global.yes, global.no_color).print_diff(&plan);
        if let Some((pr, reporter)) = reporter {
            let body = crate::github::plan_markdown(&env.name, &plan);
            reporter.upsert_pr_comment(pr, &body).await?;
        }
        anyhow::Ok(())
    })?
}
