//! The two-cluster part of `cargo xtask bench deploy`: one environment in two clusters of
//! one wave (`clusters:`, the first and the second control plane of `cargo xtask infra up
//! --second-cluster`) against the same environment in one cluster, and against two
//! `helm upgrade --install --wait` run one after the other (what helmfile does), on the same
//! rendered objects: first deploy to ready and image change to ready.

use crate::bench_deploy::{Bench, FIRST_CONTEXT, V1, V2, median, ms, ok, ratio};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `helm upgrade --install --wait` into each cluster, one after the other.
fn helm_each(
    bench: &Bench,
    contexts: &[&str],
    chart: &Path,
    namespace: &str,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for context in contexts {
        ok(
            bench.helm_upgrade(chart, namespace, "120s", Some(context))?,
            &format!("helm in {context}"),
        )?;
    }
    Ok(start.elapsed())
}

/// Measures and writes the `deploy-two-clusters` section of docs/benchmarks.md.
pub fn run(runs: usize, bench: &Bench, work: &Path) -> anyhow::Result<()> {
    let second = std::env::var("WACTL_CONTEXT_2").context(
        "WACTL_CONTEXT_2 is not set: run `cargo xtask infra up --second-cluster` and `eval \"$(cargo xtask infra env)\"`",
    )?;
    let contexts = [FIRST_CONTEXT, second.as_str()];
    bench.environment("one", "")?;
    bench.environment(
        "two",
        &format!(
            "clusters:\n  - {{ name: a, context: {FIRST_CONTEXT} }}\n  - {{ name: b, context: {second} }}\n"
        ),
    )?;
    bench.environment("helm", "")?;
    let ns = Bench::namespace;
    let delete_namespaces = || {
        for name in ["one", "two", "helm"] {
            for context in contexts {
                bench.delete_namespace(&ns(name), Some(context));
            }
        }
    };
    // Helm's charts: the same objects, rendered once by wactl for Helm's namespace.
    let mut charts: Vec<PathBuf> = Vec::new();
    for (step, image) in [("v1", V1), ("v2", V2)] {
        let rendered = work.join(format!("fleet-r-{step}"));
        bench.render("helm", image, &rendered, None)?;
        let chart_dir = work.join(format!("fleet-c-{step}"));
        crate::bench_deploy::chart(&rendered, &chart_dir)?;
        charts.push(chart_dir);
    }

    let load_before = crate::bench_rolling::load_average();
    let names = ["first deploy to ready", "image change to ready"];
    let (mut one, mut two, mut helm) = ([vec![], vec![]], [vec![], vec![]], [vec![], vec![]]);
    for run in 0..runs {
        eprintln!("bench deploy (two clusters): run {}/{runs}", run + 1);
        delete_namespaces();
        one[0].push(bench.deploy("one", V1, &[])?);
        one[1].push(bench.deploy("one", V2, &[])?);
        two[0].push(bench.deploy("two", V1, &[])?);
        two[1].push(bench.deploy("two", V2, &[])?);
        helm[0].push(helm_each(bench, &contexts, &charts[0], &ns("helm"))?);
        helm[1].push(helm_each(bench, &contexts, &charts[1], &ns("helm"))?);
    }
    delete_namespaces();
    let load_after = crate::bench_rolling::load_average();

    let mut table = String::from(
        "| measurement | wactl, 1 cluster | wactl, 2 clusters in one wave | helm --wait, 2 clusters one after the other | 2 clusters ÷ 1 cluster (wactl) | Helm ÷ wactl (2 clusters) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (i, name) in names.iter().enumerate() {
        let (o, t, h) = (
            median(one[i].clone()),
            median(two[i].clone()),
            median(helm[i].clone()),
        );
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            ms(o),
            ms(t),
            ms(h),
            ratio(t, o),
            ratio(h, t)
        ));
    }
    let body = format!(
        "Median of {runs} run(s): the first control plane of `cargo xtask infra up` (Kubernetes 1.36) and the second \
         (`--second-cluster`, 1.35), kwok nodes, debug build of wactl, Helm v3.22.0, 3 replicas, each tool in its own \
         namespace. wactl deploys both clusters of one wave in parallel, each with its own lock, plan, tracking and \
         revision; Helm runs once per cluster, one after the other, as helmfile does. The aim is 2 clusters ÷ 1 \
         cluster ≤ 1.3×; higher Helm ÷ wactl ratios are better for wactl. Load average (1, 5, 15 min) of the \
         shared 2-core machine: {load_before} when the runs started, {load_after} when they ended.\n\n{table}"
    );
    println!("{body}");
    crate::bench::write_section(
        "deploy-two-clusters",
        "`cargo xtask bench deploy` — one environment in two clusters of one wave vs one cluster vs two sequential `helm upgrade --install --wait`.",
        &body,
    )?;
    eprintln!("bench deploy: wrote the `deploy-two-clusters` section of docs/benchmarks.md");
    Ok(())
}
