//! `cargo xtask demo`: the README's first command. Starts the local infrastructure, then
//! runs wactl end to end against it: validate and render every environment, deploy
//! `dev` (build, push to the local registry, apply, track, record), show its status.

use crate::{infra, project};
use xshell::cmd;

pub fn run() -> anyhow::Result<()> {
    infra::up(&infra::UpOptions {
        images: true,
        real_node: false,
    })?;
    let sh = project::shell()?;
    cmd!(sh, "cargo build --quiet --bin wactl").run()?;
    let wactl = project::root().join("target/debug/wactl");
    for (key, value) in infra::env_vars()? {
        sh.set_var(key, value);
    }
    cmd!(sh, "{wactl} validate").run()?;
    for env in ["local", "dev", "staging", "production"] {
        let out = project::root().join("build").join(env);
        cmd!(sh, "{wactl} render {env} --out {out}").run()?;
    }
    let kubectl = infra::kubectl()?;
    let volumes = project::root().join("xtask/assets/demo/volumes.yaml");
    cmd!(sh, "{kubectl} apply --filename {volumes}").run()?;
    cmd!(sh, "{wactl} deploy dev --yes").run()?;
    cmd!(sh, "{wactl} status dev").run()?;
    Ok(())
}
