//! `cargo xtask man [--out DIR]`: wactl's man pages, generated from its clap definition.

use crate::project;
use std::path::PathBuf;
use xshell::cmd;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write `wactl.1` and `wactl-VERB.1` (default: `man/` under the cargo target
    /// directory, so nothing generated lands in the source tree).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let out = match &args.out {
        Some(out) => std::path::absolute(out)?,
        None => project::target_dir().join("man"),
    };
    let sh = project::shell()?;
    cmd!(
        sh,
        "cargo run --quiet --locked --features mangen --bin wactl-man -- {out}"
    )
    .run()?;
    let mut pages: Vec<String> = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect();
    pages.sort();
    anyhow::ensure!(
        pages.iter().any(|p| p == "wactl.1"),
        "no wactl.1 written into {}",
        out.display()
    );
    println!("{} man pages in {}", pages.len(), out.display());
    println!("read one: man {}", out.join("wactl.1").display());
    Ok(())
}
