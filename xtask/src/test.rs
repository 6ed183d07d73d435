//! `cargo xtask test`: what CI runs, from a fresh machine to every test passed.
//!
//! Installs the host tools, starts the infrastructure (`cargo xtask infra up --images
//! --real-node --second-cluster`), checks formatting, lints and dependency policy, then runs every test
//! including the infrastructure ones with the infrastructure's endpoints in the
//! environment, and finally schemathesis against address-service (`cargo xtask schemathesis`).

use crate::{actionlint, infra, project, tools, zizmor};
use anyhow::Context;
use xshell::cmd;

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check`, clippy and cargo-deny (for a quick local loop).
    #[arg(long)]
    pub no_lint: bool,
    /// Do not start the infrastructure; run only the tests that need none.
    #[arg(long)]
    pub no_infra: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    tools::ensure(tools::TEST_TOOLS)?;
    let sh = project::shell()?;
    if !args.no_lint {
        cmd!(sh, "cargo fmt --all --check")
            .run()
            .context("formatting differs: run `cargo fmt --all`")?;
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()?;
        if !tools::have("cargo-deny") {
            cmd!(sh, "cargo install cargo-deny --locked")
                .run()
                .context("installing cargo-deny from crates.io")?;
        }
        cmd!(sh, "cargo deny --locked check licenses bans sources").run()?;
    }
    if args.no_infra {
        cmd!(sh, "cargo test --workspace --locked").run()?;
        return Ok(());
    }
    // The real node too: tests/real_node.rs deploys dev-real there; and the second cluster,
    // which every multi-cluster test uses.
    infra::up(&infra::UpOptions {
        images: true,
        real_node: true,
        second_cluster: true,
    })?;
    let actionlint = actionlint::ensure()?;
    let zizmor = zizmor::ensure()?;
    let mut test = cmd!(sh, "cargo test --workspace --locked -- --include-ignored")
        .env("WACTL_ACTIONLINT", &actionlint)
        .env("WACTL_ZIZMOR", &zizmor);
    for (key, value) in infra::env_vars()? {
        test = test.env(key, value);
    }
    test.run()?;
    crate::schemathesis::run(&crate::schemathesis::Args { seconds: 120 })?;
    eprintln!(
        "xtask test: everything passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
