//! `cargo xtask demo`: the README's first command.

use crate::project;
use xshell::cmd;

pub fn run() -> anyhow::Result<()> {
    let sh = project::shell()?;
    cmd!(sh, "cargo build --quiet --bin wactl").run()?;
    let wactl = project::root().join("target/debug/wactl");
    cmd!(sh, "{wactl} validate").run()?;
    for env in ["local", "dev", "staging", "production"] {
        let out = project::root().join("build").join(env);
        cmd!(sh, "{wactl} render {env} --out {out}").run()?;
    }
    Ok(())
}
