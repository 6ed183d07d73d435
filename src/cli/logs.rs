//! `wactl logs [SERVICE] [-f] [--env ENV]`

use super::GlobalArgs;
use crate::ui::Ui;
use futures_util::StreamExt;
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One service (default: all of them, each line prefixed by its name).
    pub service: Option<String>,
    /// Keep following new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each service.
    #[arg(long)]
    pub tail: Option<usize>,
    /// Environment whose local stack to read.
    #[arg(long = "env", default_value = "local")]
    pub environment: String,
}

pub fn run(global: &GlobalArgs, _ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let env = crate::config::load(&global.env_dir, &args.environment)?;
    if let Some(service) = &args.service {
        check_service(&env, service)?;
    }
    super::block_on(async {
        let docker = crate::build::connect().await?;
        let stream = crate::local::logs(
            &docker,
            &env.local.project,
            args.service.as_deref(),
            args.follow,
            args.tail,
        )
        .await?;
        let mut stream = std::pin::pin!(stream);
        let prefix = args.service.is_none();
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = stream.next().await {
            let (service, text) = chunk?;
            for line in text.lines() {
                if prefix {
                    writeln!(out, "{service:<16} | {line}")?;
                } else {
                    writeln!(out, "{line}")?;
                }
            }
        }
        anyhow::Ok(())
    })?
}

/// A service the environment's local stack does not have is a usage error, found from the
/// definition alone (no engine needed), with the closest name as a hint.
fn check_service(env: &crate::config::Environment, service: &str) -> anyhow::Result<()> {
    let rendered = crate::render::render(env, &Default::default())?;
    let compose = rendered
        .files
        .get("compose.yaml")
        .map(|text| crate::local::compose::ComposeFile::parse(text))
        .transpose()?;
    let Some(compose) = compose else {
        return Ok(());
    };
    if compose.services.contains_key(service) {
        return Ok(());
    }
    let names = compose.services.keys().map(String::as_str);
    Err(super::UsageError::UnknownService {
        environment: env.name.clone(),
        service: service.to_owned(),
        known: names.clone().collect::<Vec<_>>().join(", "),
        hint: crate::config::closest(service, names).map(str::to_owned),
    }
    .into())
}
