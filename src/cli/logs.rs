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
