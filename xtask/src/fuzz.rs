//! `cargo xtask fuzz`: every cargo-fuzz target for a fixed time, corpus kept in the repo.

use crate::project;
use anyhow::Context;
use xshell::cmd;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
}

/// Fuzz crates (relative to the repository) and their targets.
const TARGETS: &[(&str, &str)] = &[("fuzz", "environment")];

pub fn run(args: &Args) -> anyhow::Result<()> {
    let sh = project::shell()?;
    if !crate::tools::have("cargo-fuzz") {
        cmd!(sh, "cargo install cargo-fuzz --locked")
            .run()
            .context("installing cargo-fuzz from crates.io")?;
    }
    // cargo-fuzz passes sanitizer flags that only nightly accepts; the stable toolchain
    // accepts them too when told it is bootstrapping itself.
    let _bootstrap = sh.push_env("RUSTC_BOOTSTRAP", "1");
    let max_time = format!("-max_total_time={}", args.seconds);
    for (dir, target) in TARGETS {
        let _dir = sh.push_dir(project::root().join(dir));
        let corpus = format!("corpus/{target}");
        eprintln!("xtask fuzz: {dir}/{target} for {}s", args.seconds);
        cmd!(
            sh,
            "cargo fuzz run {target} {corpus} -- {max_time} -rss_limit_mb=2048 -max_len=65536"
        )
        .run()
        .with_context(|| {
            format!("fuzz target {dir}/{target} found a crash (see {dir}/artifacts/{target})")
        })?;
    }
    Ok(())
}
