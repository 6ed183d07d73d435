//! `cargo xtask fuzz`: every cargo-fuzz target for a fixed time, corpus kept in the repo.

use crate::project;
use anyhow::Context;
use xshell::cmd;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Only this target (default: every target).
    #[arg(long)]
    pub target: Option<String>,
}

/// Fuzz crates (relative to the repository) and their targets: the environment parser, the
/// template rendering path (override text through `wactl::render`), and address-service's
/// request handling (the whole router, no socket).
const TARGETS: &[(&str, &str)] = &[
    ("fuzz", "environment"),
    ("fuzz", "template"),
    ("fuzz", "service"),
];

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
    if let Some(wanted) = &args.target
        && !TARGETS.iter().any(|(_, t)| t == wanted)
    {
        anyhow::bail!(
            "no fuzz target `{wanted}`; targets: {}",
            TARGETS
                .iter()
                .map(|(_, t)| *t)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for (dir, target) in TARGETS
        .iter()
        .filter(|(_, t)| args.target.as_deref().is_none_or(|w| w == *t))
    {
        let _dir = sh.push_dir(project::root().join(dir));
        let corpus = format!("corpus/{target}");
        eprintln!("xtask fuzz: {dir}/{target} for {}s", args.seconds);
        cmd!(
            sh,
            "cargo fuzz run {target} {corpus} -- {max_time} -timeout=20 -rss_limit_mb=2048 -max_len=65536"
        )
        .run()
        .with_context(|| {
            format!("fuzz target {dir}/{target} found a crash (see {dir}/artifacts/{target})")
        })?;
    }
    Ok(())
}
