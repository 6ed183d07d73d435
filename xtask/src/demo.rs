//! `cargo xtask demo`: the README's first command. Starts the local infrastructure, then
//! runs wactl end to end against it: validate and render every environment, deploy
//! `dev` (build, push to the local registry, apply, track, record), show its status; then
//! deploy `dev-real` on the real node and validate one address through its NodePort, so
//! a newcomer sees the service answer, not only pods that kwok reports as running.

use crate::{infra, project};
use xshell::cmd;

pub fn run() -> anyhow::Result<()> {
    infra::up(&infra::UpOptions {
        images: true,
        real_node: true,
        second_cluster: false,
    })?;
    let sh = project::shell()?;
    cmd!(sh, "cargo build --quiet --bin wactl").run()?;
    let wactl = project::root().join("target/debug/wactl");
    for (key, value) in infra::env_vars()? {
        sh.set_var(key, value);
    }
    cmd!(sh, "{wactl} validate").run()?;
    // production is protected: it renders only with an image named exactly
    // (`--image NAME@sha256:…`), which its deploy supplies after the build.
    for env in ["local", "dev", "dev-real", "staging"] {
        let out = project::root().join("build").join(env);
        cmd!(sh, "{wactl} render {env} --out {out}").run()?;
    }
    let kubectl = infra::kubectl()?;
    let volumes = project::root().join("xtask/assets/demo/volumes.yaml");
    cmd!(sh, "{kubectl} apply --filename {volumes}").run()?;
    cmd!(sh, "{wactl} deploy dev --yes").run()?;
    cmd!(sh, "{wactl} status dev").run()?;

    crate::tools::ensure(&[crate::tools::Tool {
        program: "curl",
        package: "curl",
    }])?;
    cmd!(sh, "{wactl} deploy dev-real --yes").run()?;
    let address = r#"{"country_code":"US","country_area":"CA","city":"Mountain View","postal_code":"94043","street_address":"1600 Amphitheatre Pkwy"}"#;
    let url = format!("http://127.0.0.1:{DEV_REAL_NODE_PORT}/v1/addresses/validate");
    eprintln!("demo: POST {url}\n      {address}");
    let answer = cmd!(
        sh,
        "curl --silent --show-error --fail-with-body --max-time 10 --header content-type:application/json --data {address} {url}"
    )
    .read()?;
    println!("{answer}");
    anyhow::ensure!(
        answer.contains("\"valid\":true"),
        "the service on the real node did not validate the address: {answer}"
    );
    eprintln!("demo: address-service on real-node-0 validated the address through its NodePort");
    Ok(())
}

/// `service.nodePort` of environments/dev-real.yaml.
const DEV_REAL_NODE_PORT: u16 = 30080;
