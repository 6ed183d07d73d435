//! `cargo xtask test`: what CI runs, from a fresh machine to every test passed.

use crate::{project, tools};
use xshell::cmd;

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy (for a quick local loop).
    #[arg(long)]
    pub no_lint: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    tools::ensure(tools::TEST_TOOLS)?;
    let sh = project::shell()?;
    if !args.no_lint {
        cmd!(sh, "cargo fmt --all --check").run()?;
        cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?;
    }
    let actionlint = crate::actionlint::ensure()?;
    cmd!(sh, "cargo test --workspace --locked -- --include-ignored")
        .env("WACTL_ACTIONLINT", &actionlint)
        .run()?;
    Ok(())
}
