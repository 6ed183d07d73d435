//! `wactl diff ENV`

use super::GlobalArgs;
use crate::cluster::ApplyOptions;
use crate::deploy::{self, DeployError};
use crate::render::RenderOptions;
use crate::ui::Ui;
use crate::ui::deploy::DeployUi;
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl diff staging                       what `wactl deploy staging` would change
  wactl diff staging --skip-build          compare the definition's tag (no build context)
  wactl diff staging --save-plan plan.json for `wactl deploy staging --plan plan.json`
  wactl diff staging --image REF --output json")]
pub struct Args {
    /// Environment to compare with its cluster.
    pub environment: String,
    /// Compare what `deploy --skip-build` would apply: the definition's tag, or --image.
    /// Without it, diff resolves the image as `deploy` does: the image built from the
    /// current sources when one exists (by digest), else the reference a build would make.
    #[arg(long)]
    pub skip_build: bool,
    /// Build context (default: the top of the git checkout holding the current directory).
    #[arg(long, conflicts_with = "skip_build")]
    pub source: Option<PathBuf>,
    /// Image reference to compare instead (as `deploy --skip-build --image`).
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
    /// Save the plan to FILE for `wactl deploy ENV --plan FILE` (no Secret values in it).
    #[arg(long, value_name = "FILE")]
    pub save_plan: Option<PathBuf>,
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let (name, clusters) = (&args.environment, &args.clusters);
    if args.save_plan.is_some() {
        // One file, one cluster's plan: refused before any cluster is contacted.
        clusters.require_one(&crate::config::load(&global.env_dir, name)?)?;
    }
    super::clusters::run_each(global, ui, name, clusters, "diff", |ui, env, access| {
        run_in(global, ui, args, env, access)
    })
}

/// `diff` in one cluster.
fn run_in(
    global: &GlobalArgs,
    ui: &Ui,
    args: &Args,
    env: &crate::config::Environment,
    access: &crate::cluster::Access,
) -> anyhow::Result<()> {
    if let Some(image) = &args.image {
        crate::config::names::check_image_reference(image)
            .map_err(|message| DeployError::InvalidImage { message })?;
    }
    let build = match (&args.image, args.skip_build) {
        (None, false) => Some(crate::build::BuildOptions::new(match &args.source {
            Some(dir) => dir.clone(),
            None => super::build::default_context_dir()?,
        })),
        _ => None,
    };
    let apply = ApplyOptions {
        force_conflicts: args.force_conflicts,
    };
    super::block_on(async {
        // Built inside the runtime that uses it: its HTTP client spawns a worker there.
        let reporter = match args.comment_pr {
            Some(pr) => Some((
                pr,
                crate::github::Reporter::from_env(env, args.require_github)?,
            )),
            None => None,
        };
        let client = crate::cluster::connect(env, access).await?;
        let image = match &build {
            Some(build) => Some(resolve_image(ui, env, &args.templates, build).await?),
            // Resolved as `deploy --image` resolves it, so both show the same digest.
            None => match &args.image {
                Some(given) => {
                    let (image, note) = deploy::resolve_given_image(given).await?;
                    if let Some(note) = note {
                        ui.note(&note);
                    }
                    Some(image)
                }
                None => None,
            },
        };
        let render = RenderOptions {
            image,
            templates: args.templates.clone(),
        };
        let (plan, saved) = match &args.save_plan {
            Some(_) => {
                let options = deploy::plan_file::SaveOptions {
                    render,
                    apply,
                    context: access
                        .context
                        .clone()
                        .or_else(|| env.cluster.context.clone()),
                };
                let (plan, saved) = deploy::plan_file::save(&client, env, &options).await?;
                (plan, Some(saved))
            }
            None => (deploy::plan(&client, env, &render, apply).await?, None),
        };
        DeployUi::new(ui, global.yes, global.no_color).print_diff(&plan);
        if let (Some(path), Some(saved)) = (&args.save_plan, &saved) {
            saved.write(path)?;
            ui.note(&format!(
                "plan saved to {} ({}); apply exactly it with `wactl deploy {} --plan {}`",
                path.display(),
                saved.hash(),
                env.name,
                path.display()
            ));
        }
        if let Some(canary) = deploy::canary::in_progress(&client, env).await {
            let pods = canary.spec.and_then(|s| s.replicas).unwrap_or(0);
            let name = deploy::canary::canary_name(env);
            let ingress = deploy::canary::ingress_weight(&client, env)
                .await
                .map(|w| format!(", Service and Ingress {name} ({w}% of the Ingress's requests)"))
                .unwrap_or_default();
            ui.note(&format!(
                "a canary is in progress: Deployment {name} ({pods} pods){ingress} is not part of this plan; its deploy promotes or removes it (a stopped one: the next deploy removes it)"
            ));
        }
        if let Some((pr, reporter)) = reporter {
            let mut body = crate::github::plan_markdown(&env.name, &plan);
            if let Some(saved) = &saved {
                body.push_str(&crate::github::saved_plan_markdown(saved));
            }
            reporter.upsert_pr_comment(pr, &body).await?;
        }
        anyhow::Ok(())
    })?
}

/// The image `wactl deploy` would apply, found without building (see
/// [`crate::build::resolve_without_building`]); a note says when a deploy would build.
pub(super) async fn resolve_image(
    ui: &Ui,
    env: &crate::config::Environment,
    templates: &Option<PathBuf>,
    build: &crate::build::BuildOptions,
) -> anyhow::Result<String> {
    let rendered = crate::render::render(
        env,
        &RenderOptions {
            image: None,
            templates: templates.clone(),
        },
    )?;
    let dockerfile = rendered
        .files
        .get("Dockerfile")
        .cloned()
        .unwrap_or_default();
    // Scanning the context is all that happens: its progress stays quiet.
    let quiet = Ui::new(crate::ui::OutputFormat::Text, true, ui.verbose, true);
    let progress = crate::ui::build::BuildReporter::new(&quiet);
    let resolved = async {
        let docker = crate::build::connect().await?;
        crate::build::resolve_without_building(&docker, env, &dockerfile, build, &progress).await
    }
    .await;
    progress.finish();
    let resolved = resolved
        .map_err(|e| DeployError::Build(Box::new(e)))
        .context("resolving the image a deploy would apply (or pass --skip-build)")?;
    match &resolved {
        crate::build::ResolvedImage::Existing(_) => {}
        crate::build::ResolvedImage::NotPushed(r) => ui.note(&format!(
            "{r} is built but not pushed; a deploy pushes it and applies its digest"
        )),
        crate::build::ResolvedImage::WouldBuild(r) => ui.note(&format!(
            "no image is built from the current sources; a deploy builds {r} first"
        )),
    }
    Ok(resolved.reference().to_owned())
}
